//! The test's view of the app's database, whichever backend runs: the same SQL (portable
//! statements only) and the same typed rows on MySQL and on SQLite. SQLite rows are turned into
//! MySQL rows, with the integer-millisecond times of the embedded store read back as DATETIMEs,
//! so assertions are written once.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{Datelike, Timelike};
use mysql_async::prelude::*;
use mysql_async::{Params, Row, Value};
use mysql_common::constants::ColumnType;
use mysql_common::packets::Column;

/// Columns holding times (DATETIME on MySQL, integer ms on SQLite).
const TIME_COLUMNS: [&str; 4] = ["created_at", "expires_at", "last_used", "applied_at"];

pub enum TestDb {
    MySql(mysql_async::Pool),
    Sqlite(PathBuf),
}

impl TestDb {
    pub async fn query<T: FromRow + Send + 'static>(&self, sql: &str, params: Params) -> Vec<T> {
        match self {
            Self::MySql(pool) => {
                let mut conn = pool.get_conn().await.expect("test connection");
                conn.exec(sql, params).await.expect("query")
            }
            Self::Sqlite(path) => {
                let (path, sql) = (path.clone(), sql.replace("<=>", "IS"));
                let rows = tokio::task::spawn_blocking(move || sqlite_rows(&path, &sql, params))
                    .await
                    .expect("blocking task");
                rows.into_iter().map(mysql_async::from_row).collect()
            }
        }
    }

    pub async fn exec(&self, sql: &str, params: Params) {
        match self {
            Self::MySql(pool) => {
                let mut conn = pool.get_conn().await.expect("test connection");
                conn.exec_drop(sql, params).await.expect("statement");
            }
            Self::Sqlite(path) => {
                let (path, sql) = (path.clone(), sql.to_owned());
                tokio::task::spawn_blocking(move || {
                    let conn = open(&path);
                    conn.execute(&sql, rusqlite::params_from_iter(sqlite_params(params)))
                        .expect("statement");
                })
                .await
                .expect("blocking task");
            }
        }
    }
}

fn open(path: &PathBuf) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("test sqlite connection");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("busy timeout");
    conn
}

fn sqlite_params(params: Params) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value as Sql;
    let values = match params {
        Params::Empty => Vec::new(),
        Params::Positional(values) => values,
        Params::Named(_) => panic!("tests use positional parameters"),
    };
    values
        .into_iter()
        .map(|value| match value {
            Value::NULL => Sql::Null,
            Value::Bytes(bytes) => Sql::Text(String::from_utf8(bytes).expect("UTF-8 parameter")),
            Value::Int(n) => Sql::Integer(n),
            Value::UInt(n) => Sql::Integer(i64::try_from(n).expect("fits")),
            Value::Float(x) => Sql::Real(f64::from(x)),
            Value::Double(x) => Sql::Real(x),
            date @ Value::Date(..) => {
                let at: chrono::NaiveDateTime = mysql_async::from_value(date);
                Sql::Integer(at.and_utc().timestamp_millis())
            }
            Value::Time(..) => panic!("no TIME parameters"),
        })
        .collect()
}

fn sqlite_rows(path: &PathBuf, sql: &str, params: Params) -> Vec<Row> {
    use rusqlite::types::ValueRef;
    let conn = open(path);
    let mut statement = conn.prepare(sql).expect("prepare");
    let names: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let columns: Arc<[Column]> = names
        .iter()
        .map(|name| Column::new(ColumnType::MYSQL_TYPE_VAR_STRING).with_name(name.as_bytes()))
        .collect();
    let mut rows = statement
        .query(rusqlite::params_from_iter(sqlite_params(params)))
        .expect("query");
    let mut out = Vec::new();
    while let Some(row) = rows.next().expect("row") {
        let values = (0..names.len())
            .map(|i| match row.get_ref(i).expect("column") {
                ValueRef::Null => Value::NULL,
                ValueRef::Integer(n) if TIME_COLUMNS.contains(&names[i].as_str()) => {
                    let at = chrono::DateTime::from_timestamp_millis(n).expect("time");
                    Value::Date(
                        at.year() as u16,
                        at.month() as u8,
                        at.day() as u8,
                        at.hour() as u8,
                        at.minute() as u8,
                        at.second() as u8,
                        at.timestamp_subsec_micros(),
                    )
                }
                ValueRef::Integer(n) => Value::Int(n),
                ValueRef::Real(x) => Value::Double(x),
                ValueRef::Text(text) | ValueRef::Blob(text) => Value::Bytes(text.to_vec()),
            })
            .collect();
        out.push(mysql_common::row::new_row(values, columns.clone()));
    }
    out
}
