//! The SQLite statements: one `Tx` method, one statement. Times are integer milliseconds.
//! Every method runs synchronously on the blocking thread that holds the connection; the
//! `async` is only the shape of the shared interface.

use async_trait::async_trait;
use rusqlite::{Connection, Row};

use super::rows::{from_ms, record_from_row, TOKEN_COLUMNS};
use crate::store::backend::Tx;
use crate::store::{AuditEvent, StoreError, TokenRecord};

const EVENT_COLUMNS: &str = "id, token_id, event, actor, detail, created_at";

/// The connection of one unit of work (inside `BEGIN IMMEDIATE` for a write).
pub(super) struct SqliteTx<'c> {
    pub(super) conn: &'c mut Connection,
}

impl SqliteTx<'_> {
    pub(super) fn records(
        &self,
        filter: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens {filter}");
        let mut statement = self.conn.prepare_cached(&sql)?;
        let mut rows = statement.query(args)?;
        let mut records = Vec::new();
        while let Some(row) = rows.next()? {
            records.push(record_from_row(row)?);
        }
        Ok(records)
    }

    pub(super) fn record(
        &self,
        filter: &str,
        args: impl rusqlite::Params,
    ) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.records(filter, args)?.into_iter().next())
    }

    pub(super) fn events(
        &self,
        filter: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events {filter} ORDER BY id");
        let mut statement = self.conn.prepare_cached(&sql)?;
        let mut rows = statement.query(args)?;
        let mut events = Vec::new();
        while let Some(row) = rows.next()? {
            events.push(event_from_row(row)?);
        }
        Ok(events)
    }

    pub(super) fn execute(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<usize, StoreError> {
        Ok(self.conn.prepare_cached(sql)?.execute(args)?)
    }
}

fn event_from_row(row: &Row<'_>) -> Result<AuditEvent, StoreError> {
    let detail: String = row.get(4)?;
    Ok(AuditEvent {
        id: row.get::<_, i64>(0)? as u64,
        token_id: row.get::<_, Option<i64>>(1)?.map(|id| id as u64),
        event: row.get(2)?,
        actor: row.get(3)?,
        detail: serde_json::from_str(&detail)
            .map_err(|_| StoreError::CorruptRow("audit_events.detail".into()))?,
        created_at: from_ms(row.get(5)?),
    })
}

#[async_trait]
impl Tx for SqliteTx<'_> {
    async fn ping(&mut self) -> Result<(), StoreError> {
        Ok(self.conn.query_row("SELECT 1", [], |_| Ok(()))?)
    }
}
