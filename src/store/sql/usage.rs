//! Statements counting uses, and the usage batches applied once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{count, first, id, Dialect, Statement, Value};
use crate::store::backend::Tx;
use crate::store::{StoreError, UsageDelta};

/// One use counted on its own (synchronous counting), answering the new count in the same
/// round trip: MySQL through `LAST_INSERT_ID(expr)` (the OK packet carries it), SQLite with
/// `RETURNING`. Binds uses, the time twice, the id.
const COUNT_NOW: [&str; 2] = [
    "UPDATE api_tokens SET usage_count = LAST_INSERT_ID(usage_count + ?), \
     last_used = GREATEST(COALESCE(last_used, ?), ?) WHERE id = ?",
    "UPDATE api_tokens SET usage_count = usage_count + ?, \
     last_used = MAX(COALESCE(last_used, ?), ?) WHERE id = ? RETURNING usage_count",
];
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
    /// Records a usage batch id; false when it is already recorded (applied before).
    async fn record_batch(&mut self, batch_id: &str, at: DateTime<Utc>)
        -> Result<bool, StoreError>;
    async fn forget_batches_before(&mut self, before: DateTime<Utc>) -> Result<(), StoreError>;
    /// Adds `uses` to one token now, in one statement: its new count, `None` when there is no
    /// such token.
    async fn count_now(
        &mut self,
        token: u64,
        uses: u64,
        at: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError>;
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

    async fn record_batch(
        &mut self,
        batch_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let statement = Statement::new(RECORD_BATCH, vec![batch_id.into(), at.into()]);
        Ok(self.insert(statement).await?.is_some())
    }

    async fn count_now(
        &mut self,
        token: u64,
        uses: u64,
        at: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        let dialect = self.dialect();
        let args = vec![count(uses), at.into(), at.into(), id(token)];
        let statement = Statement::new(dialect.pick(COUNT_NOW), args);
        match dialect {
            Dialect::MySql => {
                let (changed, count) = self.execute_with_id(statement).await?;
                Ok((changed > 0).then_some(count))
            }
            Dialect::Sqlite => {
                let row = first(self, statement).await?;
                row.map(|row| row.u64(0)).transpose()
            }
        }
    }

    async fn forget_batches_before(&mut self, before: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = self.dialect().pick(FORGET_BATCHES);
        self.execute(Statement::new(sql, vec![before.into()]))
            .await?;
        Ok(())
    }
}
