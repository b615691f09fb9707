//! Admin credentials (SPEC B9): who may call the admin API and with which scopes. The secrets
//! of `auth.admin_tokens` act as `*`; stored credentials carry their scopes. A credential is
//! authenticated from memory — configured digests, a cache of stored ones — and its last use
//! is written behind, so an admin call costs no store round trip once its credential is known.
//!
//! Rooms: `authenticate` (the cache and the check of a presented secret), `manage` (create,
//! list, change, revoke, with the no-escalation rule), `uses` (last use, written behind).

mod authenticate;
mod manage;
mod sessions;
mod uses;

pub use authenticate::Refusal;
pub use manage::{CreateCredential, ManageError};
pub use sessions::{SessionRefusal, Signed};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;

use crate::clock::Clock;
use crate::config::AdminTokenSettings;
use crate::domain::access::Scopes;
use crate::domain::credential::CredentialRecord;
use crate::domain::Actor;
use crate::shared::{Notice, Notices};
use crate::store::Store;

/// An authenticated admin: who acts, and what they may do.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub scopes: Arc<Scopes>,
}

/// How long a looked-up credential is trusted before it is read again (a change made
/// elsewhere without Redis is seen within it).
#[derive(Debug, Clone, Copy)]
pub struct CredentialCache {
    pub ttl: Duration,
    /// For secrets of the right shape that name no credential.
    pub negative_ttl: Duration,
}

impl CredentialCache {
    /// `verify.cache_ttl` and `verify.negative_cache_ttl`, at least one second each: a
    /// credential is never read per request, even with the token cache off.
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        let floor = Duration::from_secs(1);
        Self {
            ttl: settings.verify.cache_ttl.max(floor),
            negative_ttl: settings.verify.negative_cache_ttl.max(floor),
        }
    }
}

impl Default for CredentialCache {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
        }
    }
}

/// A stored credential as authentication uses it: its scopes parsed, its actor built.
struct Known {
    record: CredentialRecord,
    caller: Caller,
}

impl Known {
    fn new(record: CredentialRecord) -> Arc<Self> {
        let caller = Caller {
            actor: record.actor(),
            scopes: Arc::new(record.scopes.scopes().clone()),
        };
        Arc::new(Self { record, caller })
    }
}

/// A cached lookup: the credential (`None`: no such digest) and when it was read (monotonic).
struct Entry {
    credential: Option<Arc<Known>>,
    loaded_ms: i64,
}

/// Every admin credential this instance knows.
pub struct Admins {
    configured: Vec<(String, [u8; 32])>,
    everything: Arc<Scopes>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: CredentialCache,
    cache: DashMap<[u8; 32], Entry>,
    /// Bumped by every notice: a lookup that started before one does not fill the cache (it
    /// may have read what the notice says is stale).
    generation: AtomicU64,
    uses: uses::Uses,
    notices: Option<Arc<Notices>>,
}

impl Admins {
    pub fn new(
        configured: &[AdminTokenSettings],
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: CredentialCache,
    ) -> Self {
        let configured = configured
            .iter()
            .filter_map(|admin| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(&admin.digest, &mut digest).ok()?;
                Some((admin.name.clone(), digest))
            })
            .collect();
        Self {
            configured,
            everything: Arc::new(Scopes::everything()),
            store,
            clock,
            config,
            cache: DashMap::new(),
            generation: AtomicU64::new(0),
            uses: uses::Uses::default(),
            notices: None,
        }
    }

    /// Tells the other instances of every change (they drop what they cached of it).
    pub fn telling(mut self, notices: Arc<Notices>) -> Self {
        self.notices = Some(notices);
        self
    }

    /// What another instance told.
    pub fn apply_notice(&self, notice: &Notice) {
        if matches!(notice, Notice::Credential(_) | Notice::Everything) {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        match notice {
            Notice::Credential(digest) => {
                self.cache.remove(digest);
            }
            Notice::Everything => self.cache.clear(),
            _ => {}
        }
    }

    /// After a change committed: this instance holds the credential as it is now, and every
    /// other drops what it held.
    fn changed(&self, record: CredentialRecord) {
        // A lookup that read the row before this change committed must not cache what it read.
        self.generation.fetch_add(1, Ordering::AcqRel);
        let digest = record.digest.to_bytes();
        let entry = Entry {
            credential: Some(Known::new(record)),
            loaded_ms: self.clock.monotonic_ms(),
        };
        self.cache.insert(digest, entry);
        if let Some(notices) = &self.notices {
            notices.publish(Notice::Credential(digest));
        }
    }
}
