//! The MySQL statements: one `Tx` method, one statement. Parameterised, named columns, UTC.

use async_trait::async_trait;
use chrono::NaiveDateTime;
use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Transaction};

use super::rows::{record_from_row, utc};
use crate::store::backend::Tx;
use crate::store::{AuditEvent, StoreError, TokenRecord};

type EventRow = (u64, Option<u64>, String, String, String, NaiveDateTime);

/// A pooled connection: bare for reads, in a READ COMMITTED transaction for writes.
pub(super) enum MySqlTx {
    Read(Conn),
    Write(Transaction<'static>),
}

/// Runs `$body` with `$q` bound to whichever queryable the unit of work holds.
macro_rules! on {
    ($self:ident, |$q:ident| $body:expr) => {
        match $self {
            MySqlTx::Read($q) => $body,
            MySqlTx::Write($q) => $body,
        }
    };
}
pub(super) use on;

impl MySqlTx {
    pub(super) async fn record(
        &mut self,
        sql: &str,
        params: mysql_async::Params,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<Row> = on!(self, |q| q.exec_first(sql, params).await)?;
        row.map(record_from_row).transpose()
    }

    pub(super) async fn records(
        &mut self,
        sql: &str,
        params: mysql_async::Params,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let rows: Vec<Row> = on!(self, |q| q.exec(sql, params).await)?;
        rows.into_iter().map(record_from_row).collect()
    }

    /// Runs a statement; answers the rows it changed.
    pub(super) async fn change(
        &mut self,
        sql: &str,
        params: mysql_async::Params,
    ) -> Result<u64, StoreError> {
        Ok(on!(self, |q| {
            q.exec_drop(sql, params).await?;
            q.affected_rows()
        }))
    }

    pub(super) async fn events(
        &mut self,
        sql: &str,
        params: mysql_async::Params,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let rows: Vec<EventRow> = on!(self, |q| q.exec(sql, params).await)?;
        rows.into_iter().map(event_from_row).collect()
    }
}

fn event_from_row(
    (id, token_id, event, actor, detail, created_at): EventRow,
) -> Result<AuditEvent, StoreError> {
    Ok(AuditEvent {
        id,
        token_id,
        event,
        actor,
        detail: serde_json::from_str(&detail)
            .map_err(|_| StoreError::CorruptRow("audit_events.detail".into()))?,
        created_at: utc(created_at),
    })
}

/// One statement adding every delta of a chunk: a derived table of `(id, uses, at)` rows
/// joined to `api_tokens`.
pub(super) fn batch_usage_sql(rows: usize) -> String {
    let mut values = String::from("SELECT ? AS id, ? AS uses, ? AS at");
    for _ in 1..rows {
        values.push_str(" UNION ALL SELECT ?, ?, ?");
    }
    format!(
        "UPDATE api_tokens t JOIN ({values}) u ON t.id = u.id \
         SET t.usage_count = t.usage_count + u.uses, \
         t.last_used = GREATEST(COALESCE(t.last_used, u.at), u.at)"
    )
}

#[async_trait]
impl Tx for MySqlTx {
    async fn ping(&mut self) -> Result<(), StoreError> {
        match self {
            MySqlTx::Read(conn) => conn.ping().await?,
            MySqlTx::Write(tx) => tx.query_drop("SELECT 1").await?,
        }
        Ok(())
    }
}
