//! Verifications counted in memory until the next flush: one cell per (minute, token, code,
//! tags). Counting is a hash-map update; the flush takes every cell out atomically (a cell
//! counted after its shard was taken waits for the next flush), so no verification is lost or
//! counted twice.

use std::collections::HashMap;

use dashmap::DashMap;

use crate::domain::analytics::{Code, Granularity, TagSet};
use crate::domain::rollup::RollupRow;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    minute: i64,
    token_id: u64,
    code: Code,
    tags: TagSet,
}

#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    user_id: u64,
    total: u64,
    credits: u64,
}

/// What a flush takes: the minute rows, and the hour and day rows they add up to.
#[derive(Default)]
pub struct Counter {
    /// foldhash: cheaper than SipHash; a key is ours (a minute, an id, a code, allowlisted tags
    /// bounded per day), so hash flooding has nothing to aim at.
    cells: DashMap<Key, Cell, foldhash::fast::RandomState>,
}

impl Counter {
    /// Counts one verification at unix second `at`; `token` is `(token id, owner id)`.
    pub fn add(&self, at: i64, token: Option<(u64, u64)>, code: Code, credits: u64, tags: &TagSet) {
        let (token_id, user_id) = token.unwrap_or((0, 0));
        let key = Key {
            minute: Granularity::Minute.floor(at),
            token_id,
            code,
            tags: tags.clone(),
        };
        let mut cell = self.cells.entry(key).or_insert(Cell {
            user_id,
            ..Cell::default()
        });
        cell.total += 1;
        cell.credits += credits;
    }

    /// Takes every cell out: the rows of every rollup they make.
    pub fn take(&self) -> Vec<RollupRow> {
        let mut minutes = Vec::new();
        self.cells.retain(|key, cell| {
            minutes.push(RollupRow {
                granularity: Granularity::Minute,
                bucket: key.minute,
                token_id: key.token_id,
                user_id: cell.user_id,
                code: key.code,
                tags: key.tags.clone(),
                total: cell.total,
                credits: cell.credits,
            });
            false
        });
        rolled_up(minutes)
    }

    /// Verifications of one token counted here since `since` (unix seconds) and not yet taken.
    pub fn of_token_since(&self, token_id: u64, since: i64) -> u64 {
        self.cells
            .iter()
            .filter(|cell| cell.key().token_id == token_id && cell.key().minute >= since)
            .map(|cell| cell.total)
            .sum()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

/// Minute rows with the hour and day rows they sum to.
fn rolled_up(minutes: Vec<RollupRow>) -> Vec<RollupRow> {
    let mut coarser: HashMap<(Granularity, i64, u64, Code, TagSet), RollupRow> = HashMap::new();
    for row in &minutes {
        for granularity in [Granularity::Hour, Granularity::Day] {
            let bucket = granularity.floor(row.bucket);
            let key = (
                granularity,
                bucket,
                row.token_id,
                row.code,
                row.tags.clone(),
            );
            let sum = coarser.entry(key).or_insert_with(|| RollupRow {
                granularity,
                bucket,
                total: 0,
                credits: 0,
                ..row.clone()
            });
            sum.total += row.total;
            sum.credits += row.credits;
        }
    }
    let mut rows = minutes;
    rows.extend(coarser.into_values());
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_take_holds_every_count_once_with_its_hour_and_day_sums() {
        let counter = Counter::default();
        let day = 1_780_000_000 / 86_400 * 86_400;
        for (at, code) in [
            (day + 5, Code::Valid),
            (day + 65, Code::Valid),
            (day + 3_700, Code::Valid),
        ] {
            counter.add(at, Some((7, 42)), code, 2, &TagSet::none());
        }
        counter.add(day + 10, None, Code::NotFound, 0, &TagSet::none());
        let rows = counter.take();
        assert!(counter.is_empty());
        let sum = |g: Granularity, code: Code| -> (u64, u64, usize) {
            let of: Vec<_> = rows
                .iter()
                .filter(|r| r.granularity == g && r.code == code)
                .collect();
            (
                of.iter().map(|r| r.total).sum(),
                of.iter().map(|r| r.credits).sum(),
                of.len(),
            )
        };
        assert_eq!(sum(Granularity::Minute, Code::Valid), (3, 6, 3));
        assert_eq!(sum(Granularity::Hour, Code::Valid), (3, 6, 2));
        assert_eq!(sum(Granularity::Day, Code::Valid), (3, 6, 1));
        assert_eq!(sum(Granularity::Day, Code::NotFound), (1, 0, 1));
        let day_row = rows
            .iter()
            .find(|r| r.granularity == Granularity::Day && r.code == Code::Valid);
        assert_eq!(
            day_row.map(|r| (r.bucket, r.token_id, r.user_id)),
            Some((day, 7, 42))
        );
        counter.add(day + 70, Some((7, 42)), Code::Valid, 0, &TagSet::none());
        assert_eq!(counter.of_token_since(7, day), 1);
    }
}
