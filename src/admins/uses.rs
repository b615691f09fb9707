//! The last use of each stored credential (`lastUsedAt`, `lastUsedIp`), kept in memory and
//! written in one transaction per interval: no write per request.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use dashmap::DashMap;

use super::Admins;
use crate::store::StoreError;

/// Uses not yet written: the latest per credential.
#[derive(Default)]
pub(super) struct Uses(DashMap<u64, (DateTime<Utc>, Option<String>)>);

impl Uses {
    pub(super) fn record(&self, id: u64, at: DateTime<Utc>, ip: Option<IpAddr>) {
        let ip = ip.map(|ip| ip.to_canonical().to_string());
        self.0
            .entry(id)
            .and_modify(|last| {
                if last.0 <= at {
                    *last = (at, ip.clone());
                }
            })
            .or_insert((at, ip));
    }

    fn take(&self) -> Vec<(u64, DateTime<Utc>, Option<String>)> {
        let ids: Vec<u64> = self.0.iter().map(|entry| *entry.key()).collect();
        ids.into_iter()
            .filter_map(|id| self.0.remove(&id).map(|(id, (at, ip))| (id, at, ip)))
            .collect()
    }
}

impl Admins {
    /// Writes the uses recorded since the last flush; on failure they are kept for the next.
    pub async fn flush_uses(&self) -> Result<usize, StoreError> {
        let batch = self.uses.take();
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(err) = self.store.record_credential_uses(&batch).await {
            for (id, at, ip) in batch {
                let ip = ip.and_then(|ip| ip.parse().ok());
                self.uses.record(id, at, ip);
            }
            return Err(err);
        }
        Ok(batch.len())
    }
}
