//! SQLite: statements on customer limits and credits.

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Row};

use super::rows::{to_sql_count, to_sql_id};
use super::tx::SqliteTx;
use crate::store::backend::{CreditRow, LimitRow, Lock, QuotaSql};
use crate::store::quota_sql as sql;
use crate::store::StoreError;

fn count(value: Option<i64>) -> Option<u64> {
    value.map(|v| u64::try_from(v).unwrap_or(0))
}

fn limit_row(row: &Row<'_>) -> rusqlite::Result<LimitRow> {
    Ok(LimitRow {
        scope: row.get(0)?,
        subject: row.get::<_, i64>(1)? as u64,
        name: row.get(2)?,
        max_uses: row.get::<_, i64>(3)? as u64,
        duration_ms: row.get::<_, i64>(4)? as u64,
        auto_apply: row.get::<_, i64>(5)? == 1,
    })
}

fn credit_row(row: &Row<'_>) -> rusqlite::Result<CreditRow> {
    Ok(CreditRow {
        scope: row.get(0)?,
        subject: row.get::<_, i64>(1)? as u64,
        remaining: count(row.get(2)?).unwrap_or(0),
        refill_interval: row.get(3)?,
        refill_amount: count(row.get(4)?),
        refill_day: count(row.get(5)?),
        refilled_at_ms: row.get(6)?,
        generation: count(row.get(7)?).unwrap_or(0),
    })
}

impl SqliteTx<'_> {
    fn quota_rows<T>(
        &self,
        statement: &str,
        values: Vec<Value>,
        read: fn(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut statement = self.conn.prepare_cached(statement)?;
        let rows = statement.query_map(params_from_iter(values), read)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn subjects(token: u64, owner: u64) -> Vec<Value> {
    vec![
        Value::Integer(to_sql_id(token)),
        Value::Integer(to_sql_id(owner)),
    ]
}

fn of(scope: &str, subject: u64) -> [Value; 2] {
    [
        Value::Text(scope.to_owned()),
        Value::Integer(to_sql_id(subject)),
    ]
}

#[async_trait]
impl QuotaSql for SqliteTx<'_> {
    async fn limit_rows(&mut self, token: u64, owner: u64) -> Result<Vec<LimitRow>, StoreError> {
        self.quota_rows(&sql::limit_rows(), subjects(token, owner), limit_row)
    }

    async fn credit_rows(
        &mut self,
        token: u64,
        owner: u64,
        _: Lock,
    ) -> Result<Vec<CreditRow>, StoreError> {
        self.quota_rows(&sql::credit_rows(), subjects(token, owner), credit_row)
    }

    async fn replace_limits(
        &mut self,
        scope: &str,
        subject: u64,
        rows: &[LimitRow],
    ) -> Result<(), StoreError> {
        self.execute(sql::DELETE_LIMITS, params_from_iter(of(scope, subject)))?;
        if rows.is_empty() {
            return Ok(());
        }
        let values = rows.iter().flat_map(|row| {
            [
                Value::Text(row.scope.clone()),
                Value::Integer(to_sql_id(row.subject)),
                Value::Text(row.name.clone()),
                Value::Integer(to_sql_count(row.max_uses)),
                Value::Integer(to_sql_count(row.duration_ms)),
                Value::Integer(i64::from(row.auto_apply)),
            ]
        });
        self.execute(&sql::insert_limits(rows.len()), params_from_iter(values))?;
        Ok(())
    }

    async fn replace_credits(
        &mut self,
        scope: &str,
        subject: u64,
        row: Option<&CreditRow>,
    ) -> Result<(), StoreError> {
        self.execute(sql::DELETE_CREDITS, params_from_iter(of(scope, subject)))?;
        let Some(row) = row else { return Ok(()) };
        let optional =
            |value: Option<u64>| value.map_or(Value::Null, |v| Value::Integer(to_sql_count(v)));
        let values = [
            Value::Text(row.scope.clone()),
            Value::Integer(to_sql_id(row.subject)),
            Value::Integer(to_sql_count(row.remaining)),
            row.refill_interval.clone().map_or(Value::Null, Value::Text),
            optional(row.refill_amount),
            optional(row.refill_day),
            Value::Integer(row.refilled_at_ms),
            Value::Integer(to_sql_count(row.generation)),
        ];
        self.execute(&sql::insert_credits(), params_from_iter(values))?;
        Ok(())
    }

    async fn move_quota(&mut self, from: u64, to: u64) -> Result<(), StoreError> {
        for statement in sql::MOVE_QUOTA {
            self.execute(statement, [to_sql_id(to), to_sql_id(from)])?;
        }
        Ok(())
    }

    async fn all_quota_rows(&mut self) -> Result<(Vec<LimitRow>, Vec<CreditRow>), StoreError> {
        let limits = self.quota_rows(&sql::all_limit_rows(), Vec::new(), limit_row)?;
        let credits = self.quota_rows(&sql::all_credit_rows(), Vec::new(), credit_row)?;
        Ok((limits, credits))
    }
}
