//! MySQL: statements on customer limits and credits.

use async_trait::async_trait;
use mysql_async::prelude::*;
use mysql_async::{Params, Value};

use super::tx::{on, MySqlTx};
use crate::store::backend::{CreditRow, LimitRow, Lock, QuotaSql};
use crate::store::quota_sql as sql;
use crate::store::StoreError;

type LimitTuple = (String, u64, String, u64, u64, i64);
type CreditTuple = (
    String,
    u64,
    u64,
    Option<String>,
    Option<u64>,
    Option<u64>,
    i64,
    u64,
);

fn limit_row((scope, subject, name, max_uses, duration_ms, auto): LimitTuple) -> LimitRow {
    LimitRow {
        scope,
        subject,
        name,
        max_uses,
        duration_ms,
        auto_apply: auto == 1,
    }
}

fn credit_row(row: CreditTuple) -> CreditRow {
    let (scope, subject, remaining, refill_interval, refill_amount, refill_day, at, generation) =
        row;
    CreditRow {
        scope,
        subject,
        remaining,
        refill_interval,
        refill_amount,
        refill_day,
        refilled_at_ms: at,
        generation,
    }
}

fn of(scope: &str, subject: u64) -> Params {
    Params::Positional(vec![scope.into(), subject.into()])
}

#[async_trait]
impl QuotaSql for MySqlTx {
    async fn limit_rows(&mut self, token: u64, owner: u64) -> Result<Vec<LimitRow>, StoreError> {
        let statement = sql::limit_rows();
        let rows: Vec<LimitTuple> = on!(self, |q| q.exec(&statement, (token, owner)).await)?;
        Ok(rows.into_iter().map(limit_row).collect())
    }

    async fn credit_rows(
        &mut self,
        token: u64,
        owner: u64,
        lock: Lock,
    ) -> Result<Vec<CreditRow>, StoreError> {
        let mut statement = sql::credit_rows();
        if lock == Lock::ForUpdate {
            statement.push_str(" FOR UPDATE");
        }
        let rows: Vec<CreditTuple> = on!(self, |q| q.exec(&statement, (token, owner)).await)?;
        Ok(rows.into_iter().map(credit_row).collect())
    }

    async fn replace_limits(
        &mut self,
        scope: &str,
        subject: u64,
        rows: &[LimitRow],
    ) -> Result<(), StoreError> {
        self.change(sql::DELETE_LIMITS, of(scope, subject)).await?;
        if rows.is_empty() {
            return Ok(());
        }
        let values: Vec<Value> = rows
            .iter()
            .flat_map(|row| {
                [
                    row.scope.as_str().into(),
                    row.subject.into(),
                    row.name.as_str().into(),
                    row.max_uses.into(),
                    row.duration_ms.into(),
                    i64::from(row.auto_apply).into(),
                ]
            })
            .collect();
        let statement = sql::insert_limits(rows.len());
        self.change(&statement, Params::Positional(values)).await?;
        Ok(())
    }

    async fn replace_credits(
        &mut self,
        scope: &str,
        subject: u64,
        row: Option<&CreditRow>,
    ) -> Result<(), StoreError> {
        self.change(sql::DELETE_CREDITS, of(scope, subject)).await?;
        let Some(row) = row else { return Ok(()) };
        let values: Vec<Value> = vec![
            row.scope.as_str().into(),
            row.subject.into(),
            row.remaining.into(),
            row.refill_interval.clone().into(),
            row.refill_amount.into(),
            row.refill_day.into(),
            row.refilled_at_ms.into(),
            row.generation.into(),
        ];
        let statement = sql::insert_credits();
        self.change(&statement, Params::Positional(values)).await?;
        Ok(())
    }

    async fn move_quota(&mut self, from: u64, to: u64) -> Result<(), StoreError> {
        for statement in sql::MOVE_QUOTA {
            let params = Params::Positional(vec![to.into(), from.into()]);
            self.change(statement, params).await?;
        }
        Ok(())
    }

    async fn all_quota_rows(&mut self) -> Result<(Vec<LimitRow>, Vec<CreditRow>), StoreError> {
        let limits: Vec<LimitTuple> = on!(self, |q| q.query(sql::all_limit_rows()).await)?;
        let credits: Vec<CreditTuple> = on!(self, |q| q.query(sql::all_credit_rows()).await)?;
        Ok((
            limits.into_iter().map(limit_row).collect(),
            credits.into_iter().map(credit_row).collect(),
        ))
    }
}
