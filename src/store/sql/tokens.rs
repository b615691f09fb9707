//! Statements on `api_tokens` (and the owner lock), and the one mapping of a token row.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{count, first, id, Dialect, Row, Statement, Value};
use crate::domain::record::Replaced;
use crate::domain::state::{Disabled, StateReason, TokenState};
use crate::domain::{Digest, IpRestriction, Metadata, Privilege, PublicIdentifier, UserId};
use crate::store::backend::{Lock, Tx};
use crate::store::{NewToken, StoreError, TokenCounts, TokenQuery, TokenRecord, TokenStatus};

/// Every column of `api_tokens`, in the order [`token_from`] reads them.
/// The columns of a token's record over `api_tokens t`: its row (0–13), its state (14–18), its
/// owner's (19–23, from `owner_states`, NULL while the owner is enabled), and its replacement
/// during a grace rotation (24–25).
macro_rules! token_columns {
    () => {
        concat!(
            "t.id, t.user_id, t.api_token, t.public_identifier, t.prefix, t.name, t.created_at, ",
            "t.expires_at, t.restricted_to_ip_address, t.last_used, t.privilege_type, ",
            "t.usage_count, t.valid, t.metadata, ",
            "t.disabled_at, t.disabled_reason, t.disabled_by_type, t.disabled_by_id, ",
            "t.disabled_by_name, ",
            "o.disabled_at, o.disabled_reason, o.disabled_by_type, o.disabled_by_id, ",
            "o.disabled_by_name, t.replaced_by, t.rotated_at"
        )
    };
}
pub(crate) use token_columns;

/// The tokens of `api_tokens t` with their owner's state (`owner_states o`); the rest of the
/// statement names columns as `t.<column>`.
macro_rules! select_tokens {
    ($($rest:literal),*) => {
        concat!(
            "SELECT ", $crate::store::sql::tokens::token_columns!(),
            " FROM api_tokens t LEFT JOIN owner_states o ON o.user_id = t.user_id ", $($rest),*
        )
    };
}
pub(crate) use select_tokens;

/// A disabled state from its five columns (`at` … `by_name`), `None` when `at` is NULL.
fn disabled_from(row: &Row, at: usize) -> Result<Option<Disabled>, StoreError> {
    let Some(when) = row.opt_time(at)? else {
        return Ok(None);
    };
    Ok(Some(Disabled {
        at: when,
        reason: row.opt_string(at + 1)?.map(StateReason::from_stored),
        by: super::audit::actor_from(row, at + 2)?,
    }))
}

/// A row selected by `select_tokens!` (from column `at` on) as a record; a row that does not
/// fit is an error.
pub fn token_from(row: &Row, at: usize) -> Result<TokenRecord, StoreError> {
    let corrupt = |column: &str| StoreError::CorruptRow(column.to_owned());
    let ips = row.opt_string(at + 8)?;
    let metadata = row.opt_string(at + 13)?;
    Ok(TokenRecord {
        id: row.u64(at)?,
        user_id: row.user_id(at + 1)?,
        digest: Digest::parse(&row.string(at + 2)?).ok_or_else(|| corrupt("api_token"))?,
        public_identifier: PublicIdentifier::from_stored(row.string(at + 3)?),
        prefix: row.string(at + 4)?,
        name: row.string(at + 5)?,
        created_at: row.time(at + 6)?,
        expires_at: row.opt_time(at + 7)?,
        ip_restriction: IpRestriction::from_stored(ips.as_deref())
            .ok_or_else(|| corrupt("restricted_to_ip_address"))?,
        last_used: row.opt_time(at + 9)?,
        privilege: row
            .string(at + 10)?
            .parse()
            .map_err(|_| corrupt("privilege_type"))?,
        usage_count: row.u64(at + 11)?,
        valid: row.bool(at + 12)?,
        metadata: Metadata::from_stored(metadata.as_deref()).ok_or_else(|| corrupt("metadata"))?,
        state: TokenState {
            token: disabled_from(row, at + 14)?,
            owner: disabled_from(row, at + 19)?,
        },
        replaced: match row.opt_u64(at + 24)? {
            None => None,
            Some(by) => Some(Replaced {
                by,
                at: row.time(at + 25)?,
            }),
        },
        access: Default::default(),
        quota: Default::default(),
        owner_quota: Default::default(),
    })
}

const BY_DIGEST: [&str; 2] = [
    select_tokens!("WHERE api_token = ? FOR UPDATE"),
    select_tokens!("WHERE api_token = ?"),
];
const BY_ID: [&str; 2] = [
    select_tokens!("WHERE id = ? FOR UPDATE"),
    select_tokens!("WHERE id = ?"),
];
const VALID_OF_OWNER: &str = select_tokens!("WHERE t.id = ? AND t.user_id = ? AND t.valid = 1");
const EXPIRED_VALID: &str =
    "SELECT id FROM api_tokens WHERE user_id = ? AND valid = 1 AND expires_at <= ?";
const COUNT_VALID: &str = "SELECT COUNT(*) FROM api_tokens WHERE user_id = ? AND valid = 1";
/// Valid now: binds the time.
const IS_VALID: &str = "(valid = 1 AND (expires_at IS NULL OR expires_at > ?))";
const COUNTS: &str =
    "SELECT COALESCE(SUM(valid = 1 AND (expires_at IS NULL OR expires_at > ?)), 0), \
    COUNT(*) FROM api_tokens WHERE user_id = ?";
const LIST_VALID: &str = select_tokens!(
    "WHERE t.user_id = ? AND t.valid = 1 AND (t.expires_at IS NULL OR t.expires_at > ?) ",
    "ORDER BY id DESC"
);
const LOCK_OWNER: &str = "INSERT INTO api_token_owners (user_id) VALUES (?) \
    ON DUPLICATE KEY UPDATE user_id = user_id";
const INSERT_TOKEN: &str = "INSERT INTO api_tokens \
    (user_id, api_token, public_identifier, prefix, name, created_at, expires_at, \
     restricted_to_ip_address, privilege_type, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const INVALIDATE: &str = "UPDATE api_tokens SET valid = 0 WHERE id = ? AND valid = 1";
const DELETE_TOKEN: &str = "DELETE FROM api_tokens WHERE id = ?";
const SET_IPS: &str = "UPDATE api_tokens SET restricted_to_ip_address = ? WHERE id = ?";
const SET_PRIVILEGE: &str = "UPDATE api_tokens SET privilege_type = ? WHERE id = ?";
const SET_METADATA: &str = "UPDATE api_tokens SET metadata = ? WHERE id = ?";

/// ` AND <metadata value at key> = <value>`: strings bare, numbers as written, true, false and
/// null as words, compared byte for byte (MySQL's JSON text collation would pad trailing
/// spaces). The key is checked to be `[A-Za-z0-9_]{1,40}` before it gets here.
fn metadata_equals(
    dialect: Dialect,
    key: &str,
    value: &str,
    args: &mut Vec<Value>,
) -> &'static str {
    let path = format!("$.\"{key}\"");
    match dialect {
        Dialect::MySql => {
            args.extend([path.into(), value.into()]);
            " AND CAST(JSON_UNQUOTE(JSON_EXTRACT(metadata, ?)) AS BINARY) = CAST(? AS BINARY)"
        }
        Dialect::Sqlite => {
            args.extend([path.clone().into(), path.into(), value.into()]);
            " AND (CASE json_type(metadata, ?) WHEN 'true' THEN 'true' \
             WHEN 'false' THEN 'false' WHEN 'null' THEN 'null' \
             ELSE CAST(json_extract(metadata, ?) AS TEXT) END) = ?"
        }
    }
}

async fn records<T: Tx + ?Sized>(
    tx: &mut T,
    statement: Statement,
) -> Result<Vec<TokenRecord>, StoreError> {
    let rows = tx.fetch(statement).await?;
    rows.iter().map(|row| token_from(row, 0)).collect()
}

async fn record<T: Tx + ?Sized>(
    tx: &mut T,
    statement: Statement,
) -> Result<Option<TokenRecord>, StoreError> {
    first(tx, statement)
        .await?
        .map(|row| token_from(&row, 0))
        .transpose()
}

/// `[locking, plain]`: the locking text only where the dialect locks rows.
fn locked(dialect: Dialect, lock: Lock, texts: [&'static str; 2]) -> &'static str {
    match (lock, dialect) {
        (Lock::ForUpdate, Dialect::MySql) => texts[0],
        _ => texts[1],
    }
}

/// Statements on `api_tokens` (and the owner lock).
#[async_trait]
pub trait TokenSql {
    async fn token_by_digest(
        &mut self,
        digest: &Digest,
        lock: Lock,
    ) -> Result<Option<TokenRecord>, StoreError>;
    async fn token_by_id(&mut self, id: u64, lock: Lock)
        -> Result<Option<TokenRecord>, StoreError>;
    /// The owner's valid token with this id.
    async fn valid_token_of(
        &mut self,
        user_id: UserId,
        id: u64,
    ) -> Result<Option<TokenRecord>, StoreError>;
    /// Ids of the owner's tokens still marked valid whose expiry has passed at `now`.
    async fn expired_valid_ids(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<u64>, StoreError>;
    async fn count_valid(&mut self, user_id: UserId) -> Result<u64, StoreError>;
    /// Valid (and unexpired at `now`) and invalid rows of the owner.
    async fn counts(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<TokenCounts, StoreError>;
    /// The owner's valid, unexpired tokens, newest first.
    async fn list_valid(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<TokenRecord>, StoreError>;
    async fn list_tokens(&mut self, query: &TokenQuery) -> Result<Vec<TokenRecord>, StoreError>;
    /// Serialises every creation and rotation of one owner (MySQL: the `api_token_owners`
    /// row; SQLite: nothing, its write transactions are serial).
    async fn lock_owner(&mut self, user_id: UserId) -> Result<(), StoreError>;
    /// The new row's id; `None` when its digest or public identifier is taken.
    async fn insert_token(&mut self, new: &NewToken) -> Result<Option<u64>, StoreError>;
    /// `valid = 0` where it was 1; whether a row changed.
    async fn invalidate(&mut self, id: u64) -> Result<bool, StoreError>;
    async fn delete_token(&mut self, id: u64) -> Result<(), StoreError>;
    async fn set_ip_restriction(&mut self, id: u64, ips: &IpRestriction) -> Result<(), StoreError>;
    async fn set_privilege(&mut self, id: u64, privilege: Privilege) -> Result<(), StoreError>;
    async fn set_metadata(&mut self, id: u64, metadata: &Metadata) -> Result<(), StoreError>;
}

#[async_trait]
impl<T: Tx + ?Sized> TokenSql for T {
    async fn token_by_digest(
        &mut self,
        digest: &Digest,
        lock: Lock,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let sql = locked(self.dialect(), lock, BY_DIGEST);
        record(self, Statement::new(sql, vec![digest.as_str().into()])).await
    }

    async fn token_by_id(
        &mut self,
        token: u64,
        lock: Lock,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let sql = locked(self.dialect(), lock, BY_ID);
        record(self, Statement::new(sql, vec![id(token)])).await
    }

    async fn valid_token_of(
        &mut self,
        user_id: UserId,
        token: u64,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let args = vec![id(token), user_id.into()];
        record(self, Statement::new(VALID_OF_OWNER, args)).await
    }

    async fn expired_valid_ids(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<u64>, StoreError> {
        let rows = self
            .fetch(Statement::new(
                EXPIRED_VALID,
                vec![user_id.into(), now.into()],
            ))
            .await?;
        rows.iter().map(|row| row.u64(0)).collect()
    }

    async fn count_valid(&mut self, user_id: UserId) -> Result<u64, StoreError> {
        let row = first(self, Statement::new(COUNT_VALID, vec![user_id.into()])).await?;
        row.map_or(Ok(0), |row| row.u64(0))
    }

    async fn counts(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<TokenCounts, StoreError> {
        let statement = Statement::new(COUNTS, vec![now.into(), user_id.into()]);
        let (valid, total) = match first(self, statement).await? {
            Some(row) => (row.u64(0)?, row.u64(1)?),
            None => (0, 0),
        };
        Ok(TokenCounts {
            valid,
            invalid: total.saturating_sub(valid),
        })
    }

    async fn list_valid(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        records(
            self,
            Statement::new(LIST_VALID, vec![user_id.into(), now.into()]),
        )
        .await
    }

    async fn list_tokens(&mut self, query: &TokenQuery) -> Result<Vec<TokenRecord>, StoreError> {
        let mut sql = String::from(select_tokens!("WHERE 1 = 1"));
        let mut args = Vec::new();
        if let Some(user_id) = query.user_id {
            sql.push_str(" AND t.user_id = ?");
            args.push(Value::from(user_id));
        }
        if let Some(name) = &query.name {
            sql.push_str(" AND t.name = ?");
            args.push(name.as_str().into());
        }
        if let Some(public_identifier) = &query.public_identifier {
            sql.push_str(" AND t.public_identifier = ?");
            args.push(public_identifier.as_str().into());
        }
        match query.status {
            TokenStatus::All => {}
            TokenStatus::Valid => sql.push_str(&format!(" AND {IS_VALID}")),
            TokenStatus::Invalid => sql.push_str(&format!(" AND NOT {IS_VALID}")),
        }
        if query.status != TokenStatus::All {
            args.push(query.now.into());
        }
        if let Some((key, value)) = &query.metadata {
            sql.push_str(metadata_equals(self.dialect(), key, value, &mut args));
        }
        if let Some(before) = query.before_id {
            sql.push_str(" AND t.id < ?");
            args.push(id(before));
        }
        sql.push_str(" ORDER BY t.id DESC LIMIT ?");
        args.push(count(u64::from(query.limit)));
        records(self, Statement::new(sql, args)).await
    }

    async fn lock_owner(&mut self, user_id: UserId) -> Result<(), StoreError> {
        if self.dialect() == Dialect::MySql {
            self.execute(Statement::new(LOCK_OWNER, vec![user_id.into()]))
                .await?;
        }
        Ok(())
    }

    async fn insert_token(&mut self, new: &NewToken) -> Result<Option<u64>, StoreError> {
        let token = &new.token;
        let args = vec![
            new.user_id.into(),
            token.digest.as_str().into(),
            token.public_identifier.as_str().into(),
            token.prefix.as_str().into(),
            token.name.as_str().into(),
            token.created_at.into(),
            token.expires_at.into(),
            token.ip_restriction.to_stored().into(),
            token.privilege.as_str().into(),
            new.metadata.to_stored().into(),
        ];
        self.insert(Statement::new(INSERT_TOKEN, args)).await
    }

    async fn invalidate(&mut self, token: u64) -> Result<bool, StoreError> {
        let changed = self.execute(Statement::new(INVALIDATE, vec![id(token)]));
        Ok(changed.await? > 0)
    }

    async fn delete_token(&mut self, token: u64) -> Result<(), StoreError> {
        self.execute(Statement::new(DELETE_TOKEN, vec![id(token)]))
            .await?;
        Ok(())
    }

    async fn set_ip_restriction(
        &mut self,
        token: u64,
        ips: &IpRestriction,
    ) -> Result<(), StoreError> {
        let args = vec![ips.to_stored().into(), id(token)];
        self.execute(Statement::new(SET_IPS, args)).await?;
        Ok(())
    }

    async fn set_privilege(&mut self, token: u64, privilege: Privilege) -> Result<(), StoreError> {
        let args = vec![privilege.as_str().into(), id(token)];
        self.execute(Statement::new(SET_PRIVILEGE, args)).await?;
        Ok(())
    }

    async fn set_metadata(&mut self, token: u64, metadata: &Metadata) -> Result<(), StoreError> {
        let args = vec![metadata.to_stored().into(), id(token)];
        self.execute(Statement::new(SET_METADATA, args)).await?;
        Ok(())
    }
}
