//! Every statement of the store, written once (DESIGN: "statements once"): its SQL text, its
//! parameters as [`Value`]s and one mapping from a generic [`Row`] to the record. The families
//! (`tokens`, `usage`, `analytics`, `audit`, `access`, `quota`, `credentials`, `sessions`, `state`, `rotation`, `copy`, `webhooks`, `deliveries`) are each one file: a trait of the
//! statements `ops/` calls, implemented once for every [`Tx`]. A backend only executes them.
//!
//! The texts are the same on both stores (`?` placeholders, explicit columns); the few real
//! dialect differences are the named fragments of [`Dialect`].

pub mod access;
pub mod analytics;
pub mod audit;
pub mod copy;
pub mod credentials;
pub mod deliveries;
pub mod quota;
pub mod record;
pub mod rotation;
pub mod sessions;
pub mod state;
pub mod tokens;
pub mod usage;
mod value;
pub mod webhooks;

use std::borrow::Cow;

pub use value::{count, id, Row, Value};

/// The statement families, for `use crate::store::sql::families::*` where `ops/` runs them.
pub mod families {
    pub use super::access::AccessSql;
    pub use super::analytics::AnalyticsSql;
    pub use super::audit::AuditSql;
    pub use super::copy::CopySql;
    pub use super::credentials::CredentialSql;
    pub use super::deliveries::DeliverySql;
    pub use super::quota::QuotaSql;
    pub use super::record::RecordSql;
    pub use super::rotation::RotationSql;
    pub use super::sessions::SessionSql;
    pub use super::state::StateSql;
    pub use super::tokens::TokenSql;
    pub use super::usage::UsageSql;
    pub use super::webhooks::WebhookSql;
}

use super::backend::Tx;
use super::StoreError;

/// One statement to run: its text and its parameters, in order.
#[derive(Debug, Clone)]
pub struct Statement {
    pub sql: Cow<'static, str>,
    pub args: Vec<Value>,
}

impl Statement {
    pub fn new(sql: impl Into<Cow<'static, str>>, args: Vec<Value>) -> Self {
        Self {
            sql: sql.into(),
            args,
        }
    }
}

/// Which SQL a backend speaks: the handful of fragments that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    MySql,
    Sqlite,
}

impl Dialect {
    /// `[mysql, sqlite]`: the text of this dialect.
    pub fn pick(self, texts: [&'static str; 2]) -> &'static str {
        match self {
            Self::MySql => texts[0],
            Self::Sqlite => texts[1],
        }
    }

    /// A locking read's suffix: MySQL locks the rows until the transaction ends; SQLite's
    /// `BEGIN IMMEDIATE` already serialises every write transaction.
    pub fn for_update(self) -> &'static str {
        self.pick([" FOR UPDATE", ""])
    }

    /// A claiming read's suffix: MySQL locks the rows it returns and skips rows another
    /// transaction holds, so that several dispatchers never claim the same row; SQLite's
    /// `BEGIN IMMEDIATE` already serialises them.
    pub fn skip_locked(self) -> &'static str {
        self.pick([" FOR UPDATE SKIP LOCKED", ""])
    }

    /// An insert that skips rows whose key exists.
    pub fn insert_ignore(self) -> &'static str {
        self.pick(["INSERT IGNORE", "INSERT OR IGNORE"])
    }

    /// The larger of two values (SQLite's two-argument `MAX`).
    pub fn greatest(self) -> &'static str {
        self.pick(["GREATEST", "MAX"])
    }
}

/// `?, ?, …` for `n` values (at least one).
pub fn placeholders(n: usize) -> String {
    vec!["?"; n.max(1)].join(", ")
}

/// `(?, ?), (?, ?), …`: `rows` rows of `width` values.
pub fn tuples(rows: usize, width: usize) -> String {
    let row = format!("({})", placeholders(width));
    vec![row.as_str(); rows.max(1)].join(", ")
}

/// The first row, if any.
pub async fn first<T: Tx + ?Sized>(
    tx: &mut T,
    statement: Statement,
) -> Result<Option<Row>, StoreError> {
    Ok(tx.fetch(statement).await?.into_iter().next())
}
