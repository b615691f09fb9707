//! Statements on customer limits and credits (SPEC B5): times as integer milliseconds on
//! both stores, so every text is the same.

use async_trait::async_trait;

use super::{count, id, placeholders, tuples, Row, Statement, Value};
use crate::store::backend::{CreditRow, LimitRow, Lock, Tx};
use crate::store::StoreError;

const LIMIT_COLUMNS: &str = "scope, subject, name, max_uses, duration_ms, auto_apply";
const CREDIT_COLUMNS: &str = "scope, subject, remaining, refill_interval, refill_amount, \
    refill_day, refilled_at_ms, generation, alerted";
/// A token's and its owner's rows: binds the token id, then the owner id.
const OF_TOKEN_AND_OWNER: &str = "(scope = 't' AND subject = ?) OR (scope = 'u' AND subject = ?)";
const DELETE_LIMITS: &str = "DELETE FROM quota_limits WHERE scope = ? AND subject = ?";
const DELETE_CREDITS: &str = "DELETE FROM quota_credits WHERE scope = ? AND subject = ?";
/// A token's limits and credits given to another token (rotation): binds the new id, then
/// the old one.
const MOVE_QUOTA: [&str; 2] = [
    "UPDATE quota_limits SET subject = ? WHERE scope = 't' AND subject = ?",
    "UPDATE quota_credits SET subject = ? WHERE scope = 't' AND subject = ?",
];
pub(super) const CLEAR_ALL: [&str; 2] = ["DELETE FROM quota_limits", "DELETE FROM quota_credits"];

/// Where a limit's columns are in a row: `[scope, subject, name, max_uses, duration_ms,
/// auto_apply]`.
pub(super) type LimitAt = [usize; 6];
/// Where a credit row's columns are: `[scope, subject, remaining, refill_interval,
/// refill_amount, refill_day, refilled_at_ms, generation]`.
pub(super) type CreditAt = [usize; 9];
/// As `LIMIT_COLUMNS` and `CREDIT_COLUMNS` select them.
const LIMIT_AT: LimitAt = [0, 1, 2, 3, 4, 5];
const CREDIT_AT: CreditAt = [0, 1, 2, 3, 4, 5, 6, 7, 8];

/// The one mapping of a limit row, its columns where `at` says.
pub(super) fn limit_from(row: &Row, at: LimitAt) -> Result<LimitRow, StoreError> {
    Ok(LimitRow {
        scope: row.string(at[0])?,
        subject: row.u64(at[1])?,
        name: row.string(at[2])?,
        max_uses: row.u64(at[3])?,
        duration_ms: row.u64(at[4])?,
        auto_apply: row.bool(at[5])?,
    })
}

/// The one mapping of a credit row, its columns where `at` says.
pub(super) fn credit_from(row: &Row, at: CreditAt) -> Result<CreditRow, StoreError> {
    Ok(CreditRow {
        scope: row.string(at[0])?,
        subject: row.u64(at[1])?,
        remaining: row.u64(at[2])?,
        refill_interval: row.opt_string(at[3])?,
        refill_amount: row.opt_u64(at[4])?,
        refill_day: row.opt_u64(at[5])?,
        refilled_at_ms: row.i64(at[6])?,
        generation: row.u64(at[7])?,
        alerted: u8::try_from(row.u64(at[8])?).unwrap_or(u8::MAX),
    })
}

async fn limits<T: Tx + ?Sized>(tx: &mut T, s: Statement) -> Result<Vec<LimitRow>, StoreError> {
    let rows = tx.fetch(s).await?;
    rows.iter().map(|row| limit_from(row, LIMIT_AT)).collect()
}

async fn credits<T: Tx + ?Sized>(tx: &mut T, s: Statement) -> Result<Vec<CreditRow>, StoreError> {
    let rows = tx.fetch(s).await?;
    rows.iter().map(|row| credit_from(row, CREDIT_AT)).collect()
}

fn of(scope: &str, subject: u64) -> Vec<Value> {
    vec![scope.into(), id(subject)]
}

/// Statements on customer limits and credits (SPEC B5).
#[async_trait]
pub trait QuotaSql {
    /// The limits of token `token` and of owner `owner` (0 matches nothing).
    async fn limit_rows(&mut self, token: u64, owner: u64) -> Result<Vec<LimitRow>, StoreError>;
    /// The credits of token `token` and of owner `owner`, locked when asked.
    async fn credit_rows(
        &mut self,
        token: u64,
        owner: u64,
        lock: Lock,
    ) -> Result<Vec<CreditRow>, StoreError>;
    /// The credits of the tokens `ids` (those that have any).
    async fn token_credit_rows(&mut self, ids: &[u64]) -> Result<Vec<CreditRow>, StoreError>;
    /// Deletes the subject's limits, then inserts `rows` (all of that subject).
    async fn replace_limits(
        &mut self,
        scope: &str,
        subject: u64,
        rows: &[LimitRow],
    ) -> Result<(), StoreError>;
    /// Deletes the subject's credits, then inserts `row` when given.
    async fn replace_credits(
        &mut self,
        scope: &str,
        subject: u64,
        row: Option<&CreditRow>,
    ) -> Result<(), StoreError>;
    /// Gives token `from`'s limits and credits to token `to`.
    async fn move_quota(&mut self, from: u64, to: u64) -> Result<(), StoreError>;
    /// Every row, for `copy`.
    async fn all_quota_rows(&mut self) -> Result<(Vec<LimitRow>, Vec<CreditRow>), StoreError>;
}

#[async_trait]
impl<T: Tx + ?Sized> QuotaSql for T {
    async fn limit_rows(&mut self, token: u64, owner: u64) -> Result<Vec<LimitRow>, StoreError> {
        let sql = format!(
            "SELECT {LIMIT_COLUMNS} FROM quota_limits WHERE {OF_TOKEN_AND_OWNER} \
             ORDER BY scope, name"
        );
        limits(self, Statement::new(sql, vec![id(token), id(owner)])).await
    }

    async fn credit_rows(
        &mut self,
        token: u64,
        owner: u64,
        lock: Lock,
    ) -> Result<Vec<CreditRow>, StoreError> {
        let lock = match lock {
            Lock::No => "",
            Lock::ForUpdate => self.dialect().for_update(),
        };
        let sql =
            format!("SELECT {CREDIT_COLUMNS} FROM quota_credits WHERE {OF_TOKEN_AND_OWNER}{lock}");
        credits(self, Statement::new(sql, vec![id(token), id(owner)])).await
    }

    async fn token_credit_rows(&mut self, ids: &[u64]) -> Result<Vec<CreditRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {CREDIT_COLUMNS} FROM quota_credits WHERE scope = 't' AND subject IN ({})",
            placeholders(ids.len())
        );
        credits(
            self,
            Statement::new(sql, ids.iter().map(|n| id(*n)).collect()),
        )
        .await
    }

    async fn replace_limits(
        &mut self,
        scope: &str,
        subject: u64,
        rows: &[LimitRow],
    ) -> Result<(), StoreError> {
        self.execute(Statement::new(DELETE_LIMITS, of(scope, subject)))
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let args = rows
            .iter()
            .flat_map(|row| {
                [
                    row.scope.as_str().into(),
                    id(row.subject),
                    row.name.as_str().into(),
                    count(row.max_uses),
                    count(row.duration_ms),
                    row.auto_apply.into(),
                ]
            })
            .collect();
        let sql = format!(
            "INSERT INTO quota_limits ({LIMIT_COLUMNS}) VALUES {}",
            tuples(rows.len(), 6)
        );
        self.execute(Statement::new(sql, args)).await?;
        Ok(())
    }

    async fn replace_credits(
        &mut self,
        scope: &str,
        subject: u64,
        row: Option<&CreditRow>,
    ) -> Result<(), StoreError> {
        self.execute(Statement::new(DELETE_CREDITS, of(scope, subject)))
            .await?;
        let Some(row) = row else { return Ok(()) };
        let args = vec![
            row.scope.as_str().into(),
            id(row.subject),
            count(row.remaining),
            row.refill_interval.clone().into(),
            row.refill_amount.map(count).unwrap_or(Value::Null),
            row.refill_day.map(count).unwrap_or(Value::Null),
            row.refilled_at_ms.into(),
            count(row.generation),
            count(u64::from(row.alerted)),
        ];
        let sql = format!(
            "INSERT INTO quota_credits ({CREDIT_COLUMNS}) VALUES {}",
            tuples(1, 9)
        );
        self.execute(Statement::new(sql, args)).await?;
        Ok(())
    }

    async fn move_quota(&mut self, from: u64, to: u64) -> Result<(), StoreError> {
        for sql in MOVE_QUOTA {
            self.execute(Statement::new(sql, vec![id(to), id(from)]))
                .await?;
        }
        Ok(())
    }

    async fn all_quota_rows(&mut self) -> Result<(Vec<LimitRow>, Vec<CreditRow>), StoreError> {
        let sql = format!("SELECT {LIMIT_COLUMNS} FROM quota_limits ORDER BY scope, subject, name");
        let limits = limits(self, Statement::new(sql, Vec::new())).await?;
        let sql = format!("SELECT {CREDIT_COLUMNS} FROM quota_credits ORDER BY scope, subject");
        let credits = credits(self, Statement::new(sql, Vec::new())).await?;
        Ok((limits, credits))
    }
}
