//! Every kind of value a statement binds round-trips through both backends unchanged (issue
//! 24): the one place a type differs between MySQL and SQLite is each backend's value
//! conversion, so each kind is written to a real column and read back on both.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use futures_util::future::BoxFuture;
use iam_tokens::store::backend::{Backend, Tx, TxEnd, Work};
use iam_tokens::store::sql::{Dialect, Row, Statement, Value};
use iam_tokens::store::{MySqlStore, SqliteStore, StoreError};

use crate::helpers::{drop_database, SERVER_URL};

fn work<T, F>(body: F) -> Work<T>
where
    F: for<'t> FnMut(&'t mut dyn Tx) -> BoxFuture<'t, Result<TxEnd<T>, StoreError>>
        + Send
        + 'static,
{
    Box::new(body)
}

const TABLE: [&str; 2] = [
    "CREATE TABLE value_kinds (k VARCHAR(16) PRIMARY KEY, i BIGINT NULL, \
     u BIGINT UNSIGNED NULL, t TEXT NULL, b BLOB NULL, at DATETIME(3) NULL)",
    "CREATE TABLE value_kinds (k TEXT PRIMARY KEY, i INTEGER, u INTEGER, t TEXT, b BLOB, \
     at INTEGER)",
];

/// Writes one row of `values` (i, u, t, b, at) under `key` and reads it back.
async fn round_trip(backend: &impl Backend, key: &'static str, values: [Value; 5]) -> Row {
    backend
        .write(work(move |tx| {
            let values = values.clone();
            Box::pin(async move {
                let mut args = vec![Value::from(key)];
                args.extend(values);
                let insert =
                    "INSERT INTO value_kinds (k, i, u, t, b, at) VALUES (?, ?, ?, ?, ?, ?)";
                tx.execute(Statement::new(insert, args)).await?;
                let select = "SELECT i, u, t, b, at FROM value_kinds WHERE k = ?";
                let rows = tx.fetch(Statement::new(select, vec![key.into()])).await?;
                Ok(TxEnd::Commit(rows.into_iter().next().expect("the row")))
            })
        }))
        .await
        .expect("round trip")
}

async fn every_kind_reads_back_as_written(backend: impl Backend) {
    backend
        .write(work(|tx| {
            Box::pin(async move {
                let sql = tx.dialect().pick(TABLE);
                tx.execute(Statement::new(sql, Vec::new())).await?;
                Ok(TxEnd::Commit(()))
            })
        }))
        .await
        .expect("table");
    let at =
        Utc.with_ymd_and_hms(2026, 12, 7, 1, 2, 3).unwrap() + chrono::Duration::milliseconds(456);
    let max_u63 = i64::MAX as u64;
    let row = round_trip(
        &backend,
        "extremes",
        [
            Value::Int(i64::MIN),
            Value::UInt(max_u63),
            Value::from("smile 😀, ünïcode"),
            Value::Bytes(vec![0, 255, 1, 128]),
            Value::Time(at),
        ],
    )
    .await;
    assert_eq!(row.i64(0).expect("i64"), i64::MIN, "negative i64");
    assert_eq!(row.u64(1).expect("u64"), max_u63, "max u63");
    assert_eq!(
        row.string(2).expect("text"),
        "smile 😀, ünïcode",
        "4-byte UTF-8"
    );
    assert_eq!(row.0[3], Value::Bytes(vec![0, 255, 1, 128]), "bytes");
    assert_eq!(row.time(4).expect("time"), at, "a time to the millisecond");

    let row = round_trip(
        &backend,
        "empty",
        [
            Value::Int(-1),
            Value::Id(0),
            Value::from(""),
            Value::Bytes(Vec::new()),
            Value::Null,
        ],
    )
    .await;
    assert_eq!(row.i64(0).expect("i64"), -1);
    assert_eq!(row.u64(1).expect("id"), 0);
    assert_eq!(row.string(2).expect("text"), "", "empty text");
    assert_eq!(row.opt_time(4).expect("null time"), None, "NULL");

    let row = round_trip(&backend, "nulls", std::array::from_fn(|_| Value::Null)).await;
    assert_eq!(row.opt_u64(1).expect("null"), None);
    assert_eq!(row.opt_string(2).expect("null"), None);
    assert!(
        row.u64(1).is_err(),
        "NULL read as a number is an error, not 0"
    );
    assert!(
        row.string(1).is_err(),
        "a number read as text is an error, not a panic"
    );
}

#[tokio::test]
async fn every_value_kind_round_trips_through_mysql() {
    crate::store_independent!();
    let name = format!("iam_test_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{SERVER_URL}/{name}");
    MySqlStore::migrate(&url).await.expect("database");
    let store = MySqlStore::connect_lazy(&url, 2, Duration::from_secs(10)).expect("pool");
    every_kind_reads_back_as_written(store).await;
    drop_database(&name);
}

#[tokio::test]
async fn every_value_kind_round_trips_through_sqlite() {
    crate::store_independent!();
    let dir = std::env::temp_dir().join(format!("iam_test_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let store = SqliteStore::open(&dir.join("values.db"), Duration::from_secs(10)).expect("file");
    every_kind_reads_back_as_written(store).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn each_backend_names_its_dialect() {
    assert_eq!(Dialect::MySql.pick(["m", "s"]), "m");
    assert_eq!(Dialect::Sqlite.for_update(), "");
}
