//! MySQL: counting uses, and the usage batches applied once.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use mysql_async::prelude::*;
use mysql_async::{params, Value};

use super::rows::utc;
use super::tx::{batch_usage_sql, on, MySqlTx};
use super::{server_code, ER_DUP_ENTRY};
use crate::store::backend::UsageSql;
use crate::store::{StoreError, UsageDelta};

const USAGE_OF: &str = "SELECT usage_count, last_used FROM api_tokens WHERE id = :id";
const RECORD_BATCH: &str = "INSERT INTO usage_flushes (flush_id, applied_at) VALUES (?, ?)";
const FORGET_BATCHES: &str = "DELETE FROM usage_flushes WHERE applied_at < ? LIMIT 1000";
/// Rows per batched usage statement (3 parameters each, far below the 65,535 limit).
const USAGE_CHUNK: usize = 500;

#[async_trait]
impl UsageSql for MySqlTx {
    async fn add_usage(&mut self, deltas: &[UsageDelta]) -> Result<(), StoreError> {
        for chunk in deltas.chunks(USAGE_CHUNK) {
            let params: Vec<Value> = chunk
                .iter()
                .flat_map(|d| {
                    [
                        d.token_id.into(),
                        d.uses.into(),
                        d.last_used.naive_utc().into(),
                    ]
                })
                .collect();
            self.change(&batch_usage_sql(chunk.len()), params.into())
                .await?;
        }
        Ok(())
    }

    async fn usage_of(
        &mut self,
        id: u64,
    ) -> Result<Option<(u64, Option<DateTime<Utc>>)>, StoreError> {
        let row: Option<(u64, Option<NaiveDateTime>)> = on!(self, |q| q
            .exec_first(USAGE_OF, params! { "id" => id })
            .await)?;
        Ok(row.map(|(count, last)| (count, last.map(utc))))
    }

    async fn record_batch(
        &mut self,
        batch_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let params = (batch_id, at.naive_utc());
        match on!(self, |q| q.exec_drop(RECORD_BATCH, params).await) {
            Ok(()) => Ok(true),
            Err(err) if server_code(&err) == Some(ER_DUP_ENTRY) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    async fn forget_batches_before(&mut self, before: DateTime<Utc>) -> Result<(), StoreError> {
        self.change(FORGET_BATCHES, (before.naive_utc(),).into())
            .await?;
        Ok(())
    }
}
