//! The values statements bind and rows hold, the same for every backend: each backend
//! converts them to and from its driver's values (`mysql/convert.rs`, `sqlite/convert.rs`),
//! and that is the only place a type differs between them.

use chrono::{DateTime, Utc};

use crate::domain::UserId;
use crate::store::StoreError;

/// One parameter or column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    /// A count or an amount: SQLite (signed) saturates it at `i64::MAX`.
    UInt(u64),
    /// A row id: on SQLite an id past `i64::MAX` names no row and binds as -1, which no row
    /// has (ids start at 1), never as a neighbour's id.
    Id(u64),
    Text(String),
    Bytes(Vec<u8>),
    /// MySQL `DATETIME(3)`; SQLite integer milliseconds.
    Time(DateTime<Utc>),
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Self::Int(i64::from(value))
    }
}

impl From<DateTime<Utc>> for Value {
    fn from(at: DateTime<Utc>) -> Self {
        Self::Time(at)
    }
}

impl From<UserId> for Value {
    fn from(user: UserId) -> Self {
        Self::UInt(user.get())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

/// A count or an amount.
pub fn count(value: u64) -> Value {
    Value::UInt(value)
}

/// A row id.
pub fn id(value: u64) -> Value {
    Value::Id(value)
}

/// A row as read: its columns in the order the statement selected them. Reading a column as
/// a type it does not hold is a `StoreError::CorruptRow`, never a panic.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

fn corrupt(index: usize, wanted: &str) -> StoreError {
    StoreError::CorruptRow(format!("column {index} is not {wanted}"))
}

impl Row {
    fn at(&self, index: usize) -> Result<&Value, StoreError> {
        self.0
            .get(index)
            .ok_or_else(|| StoreError::CorruptRow(format!("column {index} missing")))
    }

    fn is_null(&self, index: usize) -> Result<bool, StoreError> {
        Ok(matches!(self.at(index)?, Value::Null))
    }

    pub fn i64(&self, index: usize) -> Result<i64, StoreError> {
        match self.at(index)? {
            Value::Int(value) => Ok(*value),
            Value::UInt(value) | Value::Id(value) => {
                i64::try_from(*value).map_err(|_| corrupt(index, "a signed integer"))
            }
            _ => Err(corrupt(index, "an integer")),
        }
    }

    pub fn u64(&self, index: usize) -> Result<u64, StoreError> {
        match self.at(index)? {
            Value::UInt(value) | Value::Id(value) => Ok(*value),
            Value::Int(value) => u64::try_from(*value).map_err(|_| corrupt(index, "unsigned")),
            _ => Err(corrupt(index, "an integer")),
        }
    }

    pub fn opt_u64(&self, index: usize) -> Result<Option<u64>, StoreError> {
        match self.is_null(index)? {
            true => Ok(None),
            false => self.u64(index).map(Some),
        }
    }

    pub fn bool(&self, index: usize) -> Result<bool, StoreError> {
        Ok(self.i64(index)? != 0)
    }

    pub fn string(&self, index: usize) -> Result<String, StoreError> {
        match self.at(index)? {
            Value::Text(text) => Ok(text.clone()),
            Value::Bytes(bytes) => {
                String::from_utf8(bytes.clone()).map_err(|_| corrupt(index, "UTF-8 text"))
            }
            _ => Err(corrupt(index, "text")),
        }
    }

    pub fn opt_string(&self, index: usize) -> Result<Option<String>, StoreError> {
        match self.is_null(index)? {
            true => Ok(None),
            false => self.string(index).map(Some),
        }
    }

    /// A time: MySQL's `DATETIME`, or SQLite's integer milliseconds.
    pub fn time(&self, index: usize) -> Result<DateTime<Utc>, StoreError> {
        match self.at(index)? {
            Value::Time(at) => Ok(*at),
            Value::Int(ms) => {
                DateTime::from_timestamp_millis(*ms).ok_or_else(|| corrupt(index, "a time"))
            }
            _ => Err(corrupt(index, "a time")),
        }
    }

    pub fn opt_time(&self, index: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.is_null(index)? {
            true => Ok(None),
            false => self.time(index).map(Some),
        }
    }

    pub fn user_id(&self, index: usize) -> Result<UserId, StoreError> {
        UserId::new(self.u64(index)?).map_err(|_| corrupt(index, "a user id"))
    }
}
