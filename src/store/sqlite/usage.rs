//! Counting uses: one at a time (synchronous mode) or a batch per flush.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::rows::{from_ms, to_sql_count, to_sql_id};
use super::SqliteStore;
use crate::store::{StoreError, UsageDelta};

const ADD_USAGE: &str = "UPDATE api_tokens SET usage_count = usage_count + ?1, \
    last_used = MAX(COALESCE(last_used, ?2), ?2) WHERE id = ?3";
const READ_USAGE: &str = "SELECT usage_count, last_used FROM api_tokens WHERE id = ?1";
const RECORD_BATCH: &str =
    "INSERT OR IGNORE INTO usage_flushes (flush_id, applied_at) VALUES (?1, ?2)";
const FORGET_OLD_BATCHES: &str = "DELETE FROM usage_flushes WHERE applied_at < ?1";
const DAY_MS: i64 = 86_400_000;

fn add_usage(tx: &Transaction<'_>, token_id: u64, uses: u64, at_ms: i64) -> rusqlite::Result<()> {
    tx.execute(
        ADD_USAGE,
        params![to_sql_count(uses), at_ms, to_sql_id(token_id)],
    )?;
    Ok(())
}

impl SqliteStore {
    /// Adds uses and reads the result back in the same write transaction.
    pub(super) async fn add_usage_now(
        &self,
        token_id: u64,
        uses: u64,
        at: DateTime<Utc>,
    ) -> Result<Option<(u64, DateTime<Utc>)>, StoreError> {
        self.write(move |tx| {
            let at = at.timestamp_millis();
            add_usage(tx, token_id, uses, at)?;
            let read: Option<(i64, Option<i64>)> = tx
                .query_row(READ_USAGE, [to_sql_id(token_id)], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            Ok((
                true,
                read.map(|(count, last)| (count as u64, from_ms(last.unwrap_or(at)))),
            ))
        })
        .await
    }

    /// Applies a batch once: its id is recorded in the same transaction, and a batch whose id
    /// is already there is skipped.
    pub(super) async fn apply_usage_batch(
        &self,
        batch_id: &str,
        deltas: &[UsageDelta],
    ) -> Result<(), StoreError> {
        let (batch_id, deltas) = (batch_id.to_owned(), deltas.to_vec());
        let Some(newest) = deltas.iter().map(|d| d.last_used).max() else {
            return Ok(());
        };
        let newest = newest.timestamp_millis();
        self.write(move |tx| {
            if tx.execute(RECORD_BATCH, params![batch_id, newest])? == 0 {
                // Applied by an earlier attempt whose answer was lost.
                return Ok((false, ()));
            }
            for delta in &deltas {
                let at = delta.last_used.timestamp_millis();
                add_usage(tx, delta.token_id, delta.uses, at)?;
            }
            tx.execute(FORGET_OLD_BATCHES, [newest - DAY_MS])?;
            Ok((true, ()))
        })
        .await
    }
}
