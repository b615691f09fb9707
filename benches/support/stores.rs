//! A fresh store of each kind for a bench: a database on the local MariaDB (127.0.0.1:3306),
//! dropped by `remove`, and a SQLite file in a temp dir, removed by `remove`.

use std::sync::Arc;

use iam_tokens::store::{OpenOptions, Store};
use mysql_async::prelude::*;

const SERVER: &str = "mysql://root@127.0.0.1:3306";

pub struct BenchStore {
    pub name: &'static str,
    pub store: Arc<dyn Store>,
    place: Place,
}

enum Place {
    MySql(String),
    Sqlite(std::path::PathBuf),
}

fn fresh_name() -> String {
    format!("iam_bench_{}", uuid::Uuid::new_v4().simple())
}

/// A new MariaDB database, migrated, `connections` to it.
pub async fn mysql(connections: usize) -> BenchStore {
    let db = fresh_name();
    let admin = mysql_async::Pool::new(SERVER);
    let mut conn = admin.get_conn().await.expect("MariaDB on 127.0.0.1:3306");
    conn.query_drop(format!("CREATE DATABASE `{db}`"))
        .await
        .unwrap();
    let url = format!("{SERVER}/{db}");
    let store = iam_tokens::store::open(&url, OpenOptions::new(connections))
        .await
        .expect("MySQL store");
    BenchStore {
        name: "MySQL (MariaDB)",
        store,
        place: Place::MySql(db),
    }
}

/// A new SQLite file in a temp dir.
pub async fn sqlite() -> BenchStore {
    let dir = std::env::temp_dir().join(fresh_name());
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let store = iam_tokens::store::open(&url, OpenOptions::new(1))
        .await
        .expect("SQLite store");
    BenchStore {
        name: "SQLite",
        store,
        place: Place::Sqlite(dir),
    }
}

impl BenchStore {
    /// Drops the database or removes the file.
    pub async fn remove(self) {
        drop(self.store);
        match self.place {
            Place::MySql(db) => {
                let admin = mysql_async::Pool::new(SERVER);
                let mut conn = admin.get_conn().await.unwrap();
                conn.query_drop(format!("DROP DATABASE `{db}`"))
                    .await
                    .unwrap();
            }
            Place::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}
