//! The request ids the HMAC guard has accepted, remembered exactly as long as a replay could
//! pass the timestamp check (its `X-Timestamp` plus the allowed skew), in bounded memory.
//!
//! Each id is kept as a 128-bit digest (never the id itself) in a set, and filed under the
//! second it may be forgotten; every call forgets the seconds that have passed. So a check is
//! O(1) amortised however many ids are remembered (each id is filed once and forgotten once),
//! and memory is about 40 bytes an id, up to `max_ids`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

/// Why an id was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Seen before, within its window.
    Replayed,
    /// `max_ids` ids are within their windows: no room to remember one more.
    Full,
}

pub struct ReplayWindow {
    seen: Mutex<Seen>,
    max_ids: usize,
}

#[derive(Default)]
struct Seen {
    ids: HashSet<u128, foldhash::fast::RandomState>,
    /// Unix second after which an id can no longer pass the timestamp check → the ids filed
    /// under it.
    forget_after: BTreeMap<i64, Vec<u128>>,
}

impl ReplayWindow {
    pub fn new(max_ids: usize) -> Self {
        Self {
            seen: Mutex::new(Seen::default()),
            max_ids,
        }
    }

    /// Accepts `request_id` once: remembered until `until` (after which the timestamp check
    /// refuses its replays anyway). `now` forgets every id whose time has passed.
    pub fn accept(
        &self,
        request_id: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let id = digest_of(request_id);
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        seen.forget_until(now.timestamp());
        if seen.ids.contains(&id) {
            return Err(Refusal::Replayed);
        }
        if seen.ids.len() >= self.max_ids {
            return Err(Refusal::Full);
        }
        seen.ids.insert(id);
        seen.forget_after
            .entry(until.timestamp())
            .or_default()
            .push(id);
        Ok(())
    }

    /// Ids remembered now.
    pub fn remembered(&self) -> usize {
        self.seen.lock().map_or(0, |seen| seen.ids.len())
    }
}

impl Seen {
    /// Forgets the ids of every second before `now`.
    fn forget_until(&mut self, now: i64) {
        while let Some(entry) = self.forget_after.first_entry() {
            if *entry.key() >= now {
                break;
            }
            for id in entry.remove() {
                self.ids.remove(&id);
            }
        }
        if self.ids.is_empty() && self.ids.capacity() > 1024 {
            self.ids.shrink_to(1024);
        }
    }
}

/// 128 bits of SHA-256: no two ids a client can choose collide, and no id is kept as sent.
pub fn digest_of(request_id: &str) -> u128 {
    let hash = Sha256::digest(request_id.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash[..16]);
    u128::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + second, 0).unwrap()
    }

    #[test]
    fn an_id_is_accepted_once_while_its_window_lasts_then_forgotten() {
        let window = ReplayWindow::new(10);
        assert_eq!(window.accept("a", at(300), at(0)), Ok(()));
        assert_eq!(window.accept("a", at(300), at(1)), Err(Refusal::Replayed));
        assert_eq!(window.accept("a", at(300), at(300)), Err(Refusal::Replayed));
        assert_eq!(window.accept("b", at(400), at(301)), Ok(()));
        assert_eq!(window.remembered(), 1, "a's second has passed: forgotten");
        assert_eq!(window.accept("a", at(600), at(301)), Ok(()));
    }

    #[test]
    fn memory_is_bounded_and_frees_up_as_windows_end() {
        let window = ReplayWindow::new(3);
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            assert_eq!(window.accept(id, at(10 + i as i64), at(0)), Ok(()));
        }
        assert_eq!(window.accept("d", at(20), at(0)), Err(Refusal::Full));
        assert_eq!(
            window.accept("d", at(20), at(11)),
            Ok(()),
            "a was forgotten"
        );
        assert_eq!(window.remembered(), 3);
    }

    #[test]
    fn a_steady_stream_keeps_only_the_ids_within_their_windows() {
        let window = ReplayWindow::new(1_000_000);
        for second in 0..1_000 {
            for n in 0..100 {
                let id = format!("{second}-{n}");
                assert_eq!(window.accept(&id, at(second + 300), at(second)), Ok(()));
            }
        }
        assert_eq!(
            window.remembered(),
            301 * 100,
            "300 s of ids, plus this second's"
        );
    }
}
