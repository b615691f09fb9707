//! Bans outlive a process and are seen by every instance: written to the store, re-read from it,
//! lifted everywhere (SPEC A8; with Redis also there and on the channel, SPEC B6).

use super::{Limiter, Limits};
use crate::domain::Actor;
use crate::shared::Notice;
use crate::store::{Audit, BanRecord, StoreError};

impl Limits {
    /// Writes bans made since the last call to the store. A failed write is retried on the
    /// next call and by the refresh timer; the ban is enforced here meanwhile.
    pub async fn persist_new_bans(&self) -> Result<(), StoreError> {
        let pending: Vec<BanRecord> = match self.new_bans.lock() {
            Ok(mut queue) => std::mem::take(&mut *queue),
            Err(_) => return Ok(()),
        };
        for (index, ban) in pending.iter().enumerate() {
            if let Err(err) = self.store.insert_ban(ban).await {
                if let Ok(mut queue) = self.new_bans.lock() {
                    queue.extend(pending[index..].iter().cloned());
                }
                return Err(err);
            }
            if let Some(limiter) = self.limiter(&ban.limiter) {
                limiter.mark_persisted(&ban.key);
            }
        }
        Ok(())
    }

    /// Re-reads every ban from the store: bans made by other instances start applying here,
    /// bans lifted elsewhere stop.
    pub async fn refresh_bans(&self) -> Result<(), StoreError> {
        self.persist_new_bans().await?;
        let stored = self.store.list_bans().await?;
        for limiter in self.all() {
            let mine: Vec<BanRecord> = stored
                .iter()
                .filter(|ban| ban.limiter == limiter.name())
                .cloned()
                .collect();
            limiter.reconcile_bans(&mine);
        }
        Ok(())
    }

    /// Lifts a ban everywhere: in the store (other instances follow at their next refresh)
    /// and here at once. False when neither had it.
    pub async fn lift(&self, limiter: &str, key: &str, actor: Actor) -> Result<bool, StoreError> {
        let audit = Audit {
            actor,
            at: self.clock.0.now(),
        };
        let stored = self.store.delete_ban(limiter, key, &audit).await?;
        let here = self.limiter(limiter).is_some_and(|l| l.lift(key));
        if let Some(shared) = &self.shared {
            let _ = shared.state.lift(limiter, key).await;
            shared.notices.publish(Notice::Lifted {
                limiter: limiter.to_owned(),
                key: key.to_owned(),
            });
        }
        Ok(stored || here)
    }

    /// Every ban in the store (what all instances enforce).
    pub async fn stored_bans(&self) -> Result<Vec<BanRecord>, StoreError> {
        self.store.list_bans().await
    }

    /// Bans enforced by this instance now.
    pub fn bans(&self) -> Vec<BanRecord> {
        self.all().into_iter().flat_map(Limiter::bans).collect()
    }
}
