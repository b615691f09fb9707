//! SQLite executes statements: the connection of one unit of work (every call runs
//! synchronously on the blocking thread that holds it; the `async` is only the shape of the
//! shared interface), and the conversion of [`Value`]s to and from SQLite's (the one place
//! its types appear: times are integer milliseconds, integers are signed).

use async_trait::async_trait;
use rusqlite::types::{Value as Lite, ValueRef};
use rusqlite::{params_from_iter, Connection};

use crate::store::backend::Tx;
use crate::store::sql::{Dialect, Row, Statement, Value};
use crate::store::StoreError;

/// The connection of one unit of work (inside `BEGIN IMMEDIATE` for a write).
pub(super) struct SqliteTx<'c> {
    pub(super) conn: &'c mut Connection,
}

fn bind(value: Value) -> Lite {
    match value {
        Value::Null => Lite::Null,
        Value::Int(value) => Lite::Integer(value),
        // A count past i64::MAX cannot happen; saturate rather than wrap.
        Value::UInt(value) => Lite::Integer(i64::try_from(value).unwrap_or(i64::MAX)),
        // An id past i64::MAX names no row: -1, which no row has (ids start at 1).
        Value::Id(value) => Lite::Integer(i64::try_from(value).unwrap_or(-1)),
        Value::Text(text) => Lite::Text(text),
        Value::Bytes(bytes) => Lite::Blob(bytes),
        Value::Time(at) => Lite::Integer(at.timestamp_millis()),
    }
}

fn read(value: ValueRef<'_>) -> Result<Value, StoreError> {
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(value) => Value::Int(value),
        ValueRef::Text(text) => Value::Text(
            std::str::from_utf8(text)
                .map_err(|_| StoreError::CorruptRow("text that is not UTF-8".into()))?
                .to_owned(),
        ),
        ValueRef::Blob(bytes) => Value::Bytes(bytes.to_vec()),
        ValueRef::Real(_) => {
            return Err(StoreError::CorruptRow("a column of an unused type".into()))
        }
    })
}

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

impl SqliteTx<'_> {
    fn run(&self, statement: Statement) -> Result<usize, rusqlite::Error> {
        let Statement { sql, args } = statement;
        let mut prepared = self.conn.prepare_cached(&sql)?;
        prepared.execute(params_from_iter(args.into_iter().map(bind)))
    }
}

#[async_trait]
impl Tx for SqliteTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn fetch(&mut self, statement: Statement) -> Result<Vec<Row>, StoreError> {
        let Statement { sql, args } = statement;
        let mut prepared = self.conn.prepare_cached(&sql)?;
        let width = prepared.column_count();
        let mut rows = prepared.query(params_from_iter(args.into_iter().map(bind)))?;
        let mut read_rows = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..width)
                .map(|i| read(row.get_ref(i)?))
                .collect::<Result<_, StoreError>>()?;
            read_rows.push(Row(values));
        }
        Ok(read_rows)
    }

    async fn execute(&mut self, statement: Statement) -> Result<u64, StoreError> {
        Ok(self.run(statement)? as u64)
    }

    async fn execute_with_id(&mut self, statement: Statement) -> Result<(u64, u64), StoreError> {
        let changed = self.run(statement)? as u64;
        let id = u64::try_from(self.conn.last_insert_rowid()).unwrap_or(0);
        Ok((changed, id))
    }

    /// Only a UNIQUE or PRIMARY KEY violation is "taken"; any other failure (a CHECK, a
    /// trigger, …) is a store error, as on MySQL.
    async fn insert(&mut self, statement: Statement) -> Result<Option<u64>, StoreError> {
        match self.run(statement) {
            Ok(_) => Ok(Some(
                u64::try_from(self.conn.last_insert_rowid()).unwrap_or(0),
            )),
            Err(err) if is_unique_violation(&err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn ping(&mut self) -> Result<(), StoreError> {
        Ok(self.conn.query_row("SELECT 1", [], |_| Ok(()))?)
    }
}
