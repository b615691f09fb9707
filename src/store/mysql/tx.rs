//! MySQL executes statements: the connection of one unit of work, and the conversion of
//! [`Value`]s to and from the driver's values (the one place MySQL's types appear).

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};
use mysql_async::prelude::*;
use mysql_async::{Conn, Params, Transaction};

use super::{server_code, ER_DUP_ENTRY};
use crate::store::backend::Tx;
use crate::store::sql::{Dialect, Row, Statement, Value};
use crate::store::StoreError;

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

fn bind(value: Value) -> mysql_async::Value {
    use mysql_async::Value as My;
    match value {
        Value::Null => My::NULL,
        Value::Int(value) => My::Int(value),
        Value::UInt(value) | Value::Id(value) => My::UInt(value),
        Value::Text(text) => My::Bytes(text.into_bytes()),
        Value::Bytes(bytes) => My::Bytes(bytes),
        Value::Time(at) => datetime(at),
    }
}

/// A time as MySQL's `DATETIME(3)` value. Built field by field: the driver's own conversion
/// panics on a year outside 1000–9999, which a query bound (`since=0999-…`) may name; a year
/// outside 0–9999 is clamped (no row holds one).
fn datetime(at: chrono::DateTime<chrono::Utc>) -> mysql_async::Value {
    use chrono::{Datelike as _, Timelike as _};
    let at = at.naive_utc();
    let year = u16::try_from(at.year().clamp(0, 9999)).unwrap_or(0);
    let narrow = |n: u32| u8::try_from(n).unwrap_or(u8::MAX);
    mysql_async::Value::Date(
        year,
        narrow(at.month()),
        narrow(at.day()),
        narrow(at.hour()),
        narrow(at.minute()),
        narrow(at.second()),
        at.nanosecond().min(999_999_999) / 1_000,
    )
}

fn params(args: Vec<Value>) -> Params {
    match args.is_empty() {
        true => Params::Empty,
        false => Params::Positional(args.into_iter().map(bind).collect()),
    }
}

fn read(value: mysql_async::Value) -> Result<Value, StoreError> {
    use mysql_async::Value as My;
    Ok(match value {
        My::NULL => Value::Null,
        My::Int(value) => Value::Int(value),
        My::UInt(value) => Value::UInt(value),
        My::Bytes(bytes) => Value::Bytes(bytes),
        My::Date(year, month, day, hour, minute, second, micros) => {
            let at = NaiveDate::from_ymd_opt(i32::from(year), u32::from(month), u32::from(day))
                .and_then(|d| {
                    d.and_hms_micro_opt(
                        u32::from(hour),
                        u32::from(minute),
                        u32::from(second),
                        micros,
                    )
                })
                .ok_or_else(|| StoreError::CorruptRow("a date out of range".into()))?;
            Value::Time(NaiveDateTime::and_utc(&at))
        }
        My::Float(_) | My::Double(_) | My::Time(..) => {
            return Err(StoreError::CorruptRow("a column of an unused type".into()))
        }
    })
}

/// A `DECIMAL` (what `SUM` answers) comes as its text: an integer here, or corrupt.
fn decimal(value: Value) -> Result<Value, StoreError> {
    let Value::Bytes(text) = value else {
        return Ok(value);
    };
    let text = std::str::from_utf8(&text).unwrap_or_default();
    let corrupt = || StoreError::CorruptRow("a decimal that is not an integer".into());
    match text.starts_with('-') {
        true => text.parse().map(Value::Int).map_err(|_| corrupt()),
        false => text.parse().map(Value::UInt).map_err(|_| corrupt()),
    }
}

fn row(row: mysql_async::Row) -> Result<Row, StoreError> {
    use mysql_async::consts::ColumnType;
    let columns = row.columns();
    let values = row
        .unwrap_raw()
        .into_iter()
        .zip(columns.iter())
        .map(|(value, column)| {
            let value = value.ok_or_else(|| StoreError::CorruptRow("a value taken".into()))?;
            let value = read(value)?;
            match column.column_type() {
                ColumnType::MYSQL_TYPE_NEWDECIMAL | ColumnType::MYSQL_TYPE_DECIMAL => {
                    decimal(value)
                }
                _ => Ok(value),
            }
        });
    Ok(Row(values.collect::<Result<_, _>>()?))
}

#[async_trait]
impl Tx for MySqlTx {
    fn dialect(&self) -> Dialect {
        Dialect::MySql
    }

    async fn fetch(&mut self, statement: Statement) -> Result<Vec<Row>, StoreError> {
        let Statement { sql, args } = statement;
        let rows: Vec<mysql_async::Row> = on!(self, |q| q.exec(sql.as_ref(), params(args)).await)?;
        rows.into_iter().map(row).collect()
    }

    async fn execute(&mut self, statement: Statement) -> Result<u64, StoreError> {
        let Statement { sql, args } = statement;
        Ok(on!(self, |q| {
            q.exec_drop(sql.as_ref(), params(args)).await?;
            q.affected_rows()
        }))
    }

    async fn execute_with_id(&mut self, statement: Statement) -> Result<(u64, u64), StoreError> {
        let Statement { sql, args } = statement;
        Ok(on!(self, |q| {
            q.exec_drop(sql.as_ref(), params(args)).await?;
            (q.affected_rows(), q.last_insert_id().unwrap_or(0))
        }))
    }

    async fn insert(&mut self, statement: Statement) -> Result<Option<u64>, StoreError> {
        let Statement { sql, args } = statement;
        let inserted = on!(
            self,
            |q| match q.exec_drop(sql.as_ref(), params(args)).await {
                Ok(()) => Ok(q.last_insert_id().unwrap_or(0)),
                Err(err) => Err(err),
            }
        );
        match inserted {
            Ok(id) => Ok(Some(id)),
            Err(err) if server_code(&err) == Some(ER_DUP_ENTRY) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn ping(&mut self) -> Result<(), StoreError> {
        match self {
            MySqlTx::Read(conn) => conn.ping().await?,
            MySqlTx::Write(tx) => tx.query_drop("SELECT 1").await?,
        }
        Ok(())
    }
}
