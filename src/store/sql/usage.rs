//! Statements counting uses, and the usage batches applied once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{count, first, id, Dialect, Statement, Value};
use crate::store::backend::Tx;
use crate::store::{StoreError, UsageDelta};

const USAGE_OF: &str = "SELECT usage_count, last_used FROM api_tokens WHERE id = ?";
const RECORD_BATCH: &str = "INSERT INTO usage_flushes (flush_id, applied_at) VALUES (?, ?)";
/// MySQL deletes in bounded steps; SQLite has no `DELETE … LIMIT`.
const FORGET_BATCHES: [&str; 2] = [
    "DELETE FROM usage_flushes WHERE applied_at < ? LIMIT 1000",
    "DELETE FROM usage_flushes WHERE applied_at < ?",
];
/// Rows per batched usage statement (3 parameters each, far below either store's limit).
const USAGE_CHUNK: usize = 500;

/// One statement adding every delta of a chunk: a derived table of `(id, uses, at)` rows
/// joined to `api_tokens` (MySQL `UPDATE … JOIN`, SQLite `UPDATE … FROM`).
fn add_usage_sql(dialect: Dialect, rows: usize) -> String {
    let mut values = String::from("SELECT ? AS id, ? AS uses, ? AS at");
    for _ in 1..rows {
        values.push_str(" UNION ALL SELECT ?, ?, ?");
    }
    let greatest = dialect.greatest();
    match dialect {
        Dialect::MySql => format!(
            "UPDATE api_tokens t JOIN ({values}) u ON t.id = u.id \
             SET t.usage_count = t.usage_count + u.uses, \
             t.last_used = {greatest}(COALESCE(t.last_used, u.at), u.at)"
        ),
        Dialect::Sqlite => format!(
            "UPDATE api_tokens SET usage_count = usage_count + u.uses, \
             last_used = {greatest}(COALESCE(last_used, u.at), u.at) \
             FROM ({values}) AS u WHERE api_tokens.id = u.id"
        ),
    }
}

/// Statements counting uses and recording usage batches.
#[async_trait]
pub trait UsageSql {
    /// Adds each delta's uses and moves `last_used` forward.
    async fn add_usage(&mut self, deltas: &[UsageDelta]) -> Result<(), StoreError>;
    async fn usage_of(
        &mut self,
        id: u64,
    ) -> Result<Option<(u64, Option<DateTime<Utc>>)>, StoreError>;
    /// Records a usage batch id; false when it is already recorded (applied before).
    async fn record_batch(&mut self, batch_id: &str, at: DateTime<Utc>)
        -> Result<bool, StoreError>;
    async fn forget_batches_before(&mut self, before: DateTime<Utc>) -> Result<(), StoreError>;
}

#[async_trait]
impl<T: Tx + ?Sized> UsageSql for T {
    async fn add_usage(&mut self, deltas: &[UsageDelta]) -> Result<(), StoreError> {
        for chunk in deltas.chunks(USAGE_CHUNK) {
            let args: Vec<Value> = chunk
                .iter()
                .flat_map(|d| [id(d.token_id), count(d.uses), d.last_used.into()])
                .collect();
            let sql = add_usage_sql(self.dialect(), chunk.len());
            self.execute(Statement::new(sql, args)).await?;
        }
        Ok(())
    }

    async fn usage_of(
        &mut self,
        token: u64,
    ) -> Result<Option<(u64, Option<DateTime<Utc>>)>, StoreError> {
        let row = first(self, Statement::new(USAGE_OF, vec![id(token)])).await?;
        row.map(|row| Ok((row.u64(0)?, row.opt_time(1)?)))
            .transpose()
    }

    async fn record_batch(
        &mut self,
        batch_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let statement = Statement::new(RECORD_BATCH, vec![batch_id.into(), at.into()]);
        Ok(self.insert(statement).await?.is_some())
    }

    async fn forget_batches_before(&mut self, before: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = self.dialect().pick(FORGET_BATCHES);
        self.execute(Statement::new(sql, vec![before.into()]))
            .await?;
        Ok(())
    }
}
