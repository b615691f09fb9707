//! `TokenStore` on MySQL/MariaDB through mysql_async. The session time zone is UTC.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use mysql_async::prelude::*;
use mysql_async::{
    params, IsolationLevel, Opts, OptsBuilder, Params, Pool, PoolConstraints, PoolOpts, Row,
    Transaction, TxOpts,
};

use super::{
    migrate, BanRecord, BanStore, CreateOutcome, NewToken, RotateOutcome, Rotation, StoreError,
    TokenCounts, TokenRecord, TokenStore, UsageDelta,
};
use crate::token::{Digest, IpRestriction, Privilege, PublicIdentifier};

/// Every column of `api_tokens`, in the order `record_from_row` reads them.
macro_rules! select_tokens {
    ($($rest:literal),*) => {
        concat!(
            "SELECT id, user_id, api_token, public_identifier, prefix, name, created_at, ",
            "expires_at, restricted_to_ip_address, last_used, privilege_type, usage_count, valid ",
            "FROM api_tokens ", $($rest),*
        )
    };
}

const FIND_BY_DIGEST: &str = select_tokens!("WHERE api_token = :digest");
const FIND_FOR_OWNER: &str = select_tokens!(
    "WHERE id = :id AND user_id = :user_id AND public_identifier = :public_identifier ",
    "AND name = :name AND valid = 1"
);
const FIND_VALID_FOR_UPDATE: &str = select_tokens!(
    "WHERE api_token = :digest AND valid = 1 AND privilege_type = :privilege FOR UPDATE"
);
const LIST_VALID: &str = select_tokens!(
    "WHERE user_id = :user_id AND valid = 1 AND (expires_at IS NULL OR expires_at > :now) ",
    "ORDER BY id DESC"
);
const LOCK_OWNER: &str = "INSERT INTO api_token_owners (user_id) VALUES (:user_id) \
    ON DUPLICATE KEY UPDATE user_id = user_id";
const EXPIRE_OWNER_TOKENS: &str = "UPDATE api_tokens SET valid = 0 \
    WHERE user_id = :user_id AND valid = 1 AND expires_at <= :now";
const COUNT_VALID: &str = "SELECT COUNT(*) FROM api_tokens WHERE user_id = :user_id AND valid = 1";
const INSERT_TOKEN: &str = "INSERT INTO api_tokens \
    (user_id, api_token, public_identifier, prefix, name, created_at, expires_at, \
     restricted_to_ip_address, privilege_type) \
    VALUES (:user_id, :digest, :public_identifier, :prefix, :name, :created_at, :expires_at, \
     :ips, :privilege)";
const INVALIDATE: &str = "UPDATE api_tokens SET valid = 0 WHERE id = :id AND valid = 1";
const DELETE_TOKEN: &str = "DELETE FROM api_tokens WHERE id = :id";
const ADD_USAGE: &str = "UPDATE api_tokens SET usage_count = usage_count + :uses, \
    last_used = GREATEST(COALESCE(last_used, :at), :at) WHERE id = :id";
const RECORD_BATCH: &str = "INSERT INTO usage_flushes (flush_id, applied_at) VALUES (?, ?)";
const FORGET_OLD_BATCHES: &str = "DELETE FROM usage_flushes WHERE applied_at < ? LIMIT 1000";
/// Rows per batched usage statement (3 parameters each, far below the 65,535 limit).
const USAGE_CHUNK: usize = 500;
const READ_USAGE: &str = "SELECT usage_count, last_used FROM api_tokens WHERE id = :id";
const UPDATE_IPS: &str = "UPDATE api_tokens SET restricted_to_ip_address = :ips \
    WHERE user_id = :user_id AND api_token = :digest AND valid = 1";
const UPDATE_PRIVILEGE: &str = "UPDATE api_tokens SET privilege_type = :privilege \
    WHERE user_id = :user_id AND api_token = :digest AND valid = 1";
const COUNTS: &str = "SELECT \
    COALESCE(SUM(valid = 1 AND (expires_at IS NULL OR expires_at > :now)), 0), COUNT(*) \
    FROM api_tokens WHERE user_id = :user_id";

/// MySQL error numbers after which a whole transaction is worth running again.
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
const ER_LOCK_DEADLOCK: u16 = 1213;
const ER_DUP_ENTRY: u16 = 1062;
const TRANSACTION_ATTEMPTS: usize = 8;

/// The MySQL backend. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct MySqlStore {
    pool: Pool,
}

impl MySqlStore {
    /// Builds a lazy pool: no connection is made until the first query, so a service can start
    /// (and answer `/health`) while the database is down.
    pub fn connect_lazy(url: &str, max_connections: usize) -> Result<Self, StoreError> {
        let opts = parse_url(url)?;
        let constraints = PoolConstraints::new(0, max_connections.max(1))
            .ok_or_else(|| StoreError::Url("bad pool size".into()))?;
        let opts = OptsBuilder::from_opts(opts)
            .setup(vec!["SET time_zone = '+00:00'"])
            .client_found_rows(true)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_inactive_connection_ttl(Duration::from_secs(60)),
            );
        Ok(Self {
            pool: Pool::new(opts),
        })
    }

    /// Creates the database if missing and applies pending migrations.
    pub async fn migrate(url: &str) -> Result<usize, StoreError> {
        let opts = parse_url(url)?;
        migrate::create_database_if_missing(&opts).await?;
        let mut conn = mysql_async::Conn::new(opts).await?;
        let ran = migrate::run(&mut conn).await;
        conn.disconnect().await?;
        ran
    }

    /// Closes every pooled connection.
    pub async fn close(self) -> Result<(), StoreError> {
        self.pool.disconnect().await?;
        Ok(())
    }

    /// Runs `op` in a READ COMMITTED transaction, again from the start after a deadlock or a
    /// lock-wait timeout (both roll the transaction back, so a retry sees a clean slate).
    async fn in_transaction<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: for<'t> Fn(&'t mut Transaction<'static>) -> BoxFut<'t, T>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut options = TxOpts::default();
            options.with_isolation_level(IsolationLevel::ReadCommitted);
            let mut tx = self.pool.start_transaction(options).await?;
            match op(&mut tx).await {
                Ok(TxEnd::Commit(value)) => {
                    tx.commit().await?;
                    return Ok(value);
                }
                Ok(TxEnd::Rollback(value)) => {
                    tx.rollback().await?;
                    return Ok(value);
                }
                Err(err) if is_retryable(&err) && attempt < TRANSACTION_ATTEMPTS => {
                    drop(tx);
                    tokio::time::sleep(Duration::from_millis(5 * attempt as u64)).await;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
}

type BoxFut<'t, T> =
    std::pin::Pin<Box<dyn Future<Output = Result<TxEnd<T>, mysql_async::Error>> + Send + 't>>;

/// How a transaction body ends.
enum TxEnd<T> {
    Commit(T),
    Rollback(T),
}

fn parse_url(url: &str) -> Result<Opts, StoreError> {
    Opts::from_url(url).map_err(|_| StoreError::Url("not a valid mysql:// URL".into()))
}

fn server_code(err: &mysql_async::Error) -> Option<u16> {
    match err {
        mysql_async::Error::Server(server) => Some(server.code),
        _ => None,
    }
}

fn is_retryable(err: &mysql_async::Error) -> bool {
    matches!(
        server_code(err),
        Some(ER_LOCK_DEADLOCK | ER_LOCK_WAIT_TIMEOUT)
    )
}

fn insert_params(new: &NewToken) -> Params {
    params! {
        "user_id" => new.user_id,
        "digest" => new.digest.as_str(),
        "public_identifier" => new.public_identifier.as_str(),
        "prefix" => new.prefix.as_str(),
        "name" => new.name.as_str(),
        "created_at" => new.created_at.naive_utc(),
        "expires_at" => new.expires_at.map(|t| t.naive_utc()),
        "ips" => ips_json(&new.ip_restriction),
        "privilege" => new.privilege.as_str(),
    }
}

/// `NULL` for no restriction, else a JSON array of entries (riavzon's stored form).
fn ips_json(ips: &IpRestriction) -> Option<String> {
    (!ips.is_unrestricted()).then(|| serde_json::Value::from(ips.entries()).to_string())
}

fn record_from_new(id: u64, new: &NewToken) -> TokenRecord {
    TokenRecord {
        id,
        user_id: new.user_id,
        digest: new.digest.clone(),
        public_identifier: new.public_identifier.clone(),
        prefix: new.prefix.clone(),
        name: new.name.clone(),
        created_at: new.created_at,
        expires_at: new.expires_at,
        ip_restriction: new.ip_restriction.clone(),
        last_used: None,
        privilege: new.privilege,
        usage_count: 0,
        valid: true,
    }
}

fn take<T: FromValue>(row: &mut Row, index: usize) -> Result<T, StoreError> {
    row.take_opt(index)
        .ok_or_else(|| StoreError::CorruptRow(format!("column {index} missing")))?
        .map_err(|_| StoreError::CorruptRow(format!("column {index} has an unexpected type")))
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// Reads a row selected by `select_tokens!`. A row that does not fit the domain is an error,
/// never a panic.
fn record_from_row(mut row: Row) -> Result<TokenRecord, StoreError> {
    let digest: String = take(&mut row, 2)?;
    let ips: Option<String> = take(&mut row, 8)?;
    let privilege: String = take(&mut row, 10)?;
    let ip_restriction = match ips {
        None => IpRestriction::unrestricted(),
        Some(json) => {
            let entries: Vec<String> = serde_json::from_str(&json)
                .map_err(|_| StoreError::CorruptRow("restricted_to_ip_address".into()))?;
            IpRestriction::parse(&entries)
                .map_err(|_| StoreError::CorruptRow("restricted_to_ip_address".into()))?
        }
    };
    Ok(TokenRecord {
        id: take(&mut row, 0)?,
        user_id: take(&mut row, 1)?,
        digest: Digest::parse(&digest).ok_or_else(|| StoreError::CorruptRow("api_token".into()))?,
        public_identifier: PublicIdentifier::from_stored(take(&mut row, 3)?),
        prefix: take(&mut row, 4)?,
        name: take(&mut row, 5)?,
        created_at: utc(take(&mut row, 6)?),
        expires_at: take::<Option<NaiveDateTime>>(&mut row, 7)?.map(utc),
        ip_restriction,
        last_used: take::<Option<NaiveDateTime>>(&mut row, 9)?.map(utc),
        privilege: privilege
            .parse()
            .map_err(|_| StoreError::CorruptRow("privilege_type".into()))?,
        usage_count: take(&mut row, 11)?,
        valid: take::<i64>(&mut row, 12)? == 1,
    })
}

fn first_record(row: Option<Row>) -> Result<Option<TokenRecord>, StoreError> {
    row.map(record_from_row).transpose()
}

/// Locks the owner row, marks the owner's expired tokens invalid, and counts the valid rest.
async fn lock_owner_and_count(
    tx: &mut Transaction<'static>,
    user_id: u64,
    now: NaiveDateTime,
) -> Result<u64, mysql_async::Error> {
    tx.exec_drop(LOCK_OWNER, params! { "user_id" => user_id })
        .await?;
    tx.exec_drop(
        EXPIRE_OWNER_TOKENS,
        params! { "user_id" => user_id, "now" => now },
    )
    .await?;
    let count: Option<u64> = tx
        .exec_first(COUNT_VALID, params! { "user_id" => user_id })
        .await?;
    Ok(count.unwrap_or(0))
}

#[async_trait]
impl TokenStore for MySqlStore {
    async fn create_token(&self, new: &NewToken, limit: u32) -> Result<CreateOutcome, StoreError> {
        let now = new.created_at.naive_utc();
        let id = self
            .in_transaction(|tx| {
                let new = new.clone();
                Box::pin(async move {
                    let valid = lock_owner_and_count(tx, new.user_id, now).await?;
                    if valid >= u64::from(limit) {
                        return Ok(TxEnd::Rollback(None));
                    }
                    tx.exec_drop(INSERT_TOKEN, insert_params(&new)).await?;
                    Ok(TxEnd::Commit(tx.last_insert_id()))
                })
            })
            .await?;
        Ok(match id {
            Some(id) => CreateOutcome::Created(record_from_new(id, new)),
            None => CreateOutcome::LimitReached,
        })
    }

    async fn find_by_digest(&self, digest: &Digest) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<Row> = self
            .pool
            .get_conn()
            .await?
            .exec_first(FIND_BY_DIGEST, params! { "digest" => digest.as_str() })
            .await?;
        first_record(row)
    }

    async fn find_for_owner(
        &self,
        user_id: u64,
        token_id: u64,
        public_identifier: &str,
        name: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<Row> = self
            .pool
            .get_conn()
            .await?
            .exec_first(
                FIND_FOR_OWNER,
                params! {
                    "id" => token_id,
                    "user_id" => user_id,
                    "public_identifier" => public_identifier,
                    "name" => name,
                },
            )
            .await?;
        first_record(row)
    }

    async fn invalidate(&self, token_id: u64) -> Result<bool, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(INVALIDATE, params! { "id" => token_id })
            .await?;
        Ok(conn.affected_rows() > 0)
    }

    async fn record_usage(
        &self,
        token_id: u64,
        uses: u64,
        at: DateTime<Utc>,
    ) -> Result<Option<(u64, DateTime<Utc>)>, StoreError> {
        let at = at.naive_utc();
        let read: Option<(u64, Option<NaiveDateTime>)> = self
            .in_transaction(|tx| {
                Box::pin(async move {
                    tx.exec_drop(
                        ADD_USAGE,
                        params! { "id" => token_id, "uses" => uses, "at" => at },
                    )
                    .await?;
                    let read = tx
                        .exec_first(READ_USAGE, params! { "id" => token_id })
                        .await?;
                    Ok(TxEnd::Commit(read))
                })
            })
            .await?;
        Ok(read.map(|(count, last)| (count, utc(last.unwrap_or(at)))))
    }

    async fn apply_usage(&self, batch_id: &str, deltas: &[UsageDelta]) -> Result<(), StoreError> {
        let Some(newest) = deltas.iter().map(|d| d.last_used).max() else {
            return Ok(());
        };
        let applied_at = newest.naive_utc();
        let forget_before = (newest - chrono::Duration::days(1)).naive_utc();
        self.in_transaction(|tx| {
            let deltas = deltas.to_vec();
            let batch_id = batch_id.to_owned();
            Box::pin(async move {
                match tx.exec_drop(RECORD_BATCH, (batch_id, applied_at)).await {
                    Ok(()) => {}
                    // Applied by an earlier attempt whose answer was lost.
                    Err(err) if server_code(&err) == Some(ER_DUP_ENTRY) => {
                        return Ok(TxEnd::Rollback(()));
                    }
                    Err(err) => return Err(err),
                }
                for chunk in deltas.chunks(USAGE_CHUNK) {
                    let params: Vec<mysql_async::Value> = chunk
                        .iter()
                        .flat_map(|d| {
                            [
                                d.token_id.into(),
                                d.uses.into(),
                                d.last_used.naive_utc().into(),
                            ]
                        })
                        .collect();
                    tx.exec_drop(batch_usage_sql(chunk.len()), params).await?;
                }
                tx.exec_drop(FORGET_OLD_BATCHES, (forget_before,)).await?;
                Ok(TxEnd::Commit(()))
            })
        })
        .await
    }

    async fn revoke(
        &self,
        digest: &Digest,
        privilege: Option<Privilege>,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let Some(record) = self.find_by_digest(digest).await? else {
            return Ok(None);
        };
        if !record.valid || privilege.is_some_and(|p| p != record.privilege) {
            return Ok(None);
        }
        Ok(self.invalidate(record.id).await?.then_some(record))
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        let now = rotation.now.naive_utc();
        self.in_transaction(|tx| {
            let rotation = rotation.clone();
            Box::pin(async move {
                let row: Option<Row> = tx
                    .exec_first(
                        FIND_VALID_FOR_UPDATE,
                        params! {
                            "digest" => rotation.old_digest.as_str(),
                            "privilege" => rotation.privilege.as_str(),
                        },
                    )
                    .await?;
                let Some(old) = row.map(record_from_row).transpose().map_err(corrupt)? else {
                    return Ok(TxEnd::Rollback(RotateOutcome::OldNotFound));
                };
                if old.is_expired_at(rotation.now) {
                    return Ok(TxEnd::Rollback(RotateOutcome::OldExpired));
                }
                let retire = if rotation.delete_old {
                    DELETE_TOKEN
                } else {
                    INVALIDATE
                };
                tx.exec_drop(retire, params! { "id" => old.id }).await?;
                let valid = lock_owner_and_count(tx, old.user_id, now).await?;
                if valid >= u64::from(rotation.limit) {
                    return Ok(TxEnd::Rollback(RotateOutcome::LimitReached));
                }
                let new = NewToken {
                    user_id: old.user_id,
                    ..rotation.new.clone()
                };
                match tx.exec_drop(INSERT_TOKEN, insert_params(&new)).await {
                    Ok(()) => {}
                    Err(err) if server_code(&err) == Some(ER_DUP_ENTRY) => {
                        return Ok(TxEnd::Rollback(RotateOutcome::CreateFailed));
                    }
                    Err(err) => return Err(err),
                }
                let new_id = tx.last_insert_id().unwrap_or_default();
                let new = record_from_new(new_id, &new);
                Ok(TxEnd::Commit(RotateOutcome::Rotated {
                    old: Box::new(old),
                    new: Box::new(new),
                }))
            })
        })
        .await
    }

    async fn update_ip_restriction(
        &self,
        user_id: u64,
        digest: &Digest,
        ips: &IpRestriction,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            UPDATE_IPS,
            params! { "user_id" => user_id, "digest" => digest.as_str(), "ips" => ips_json(ips) },
        )
        .await?;
        Ok(conn.affected_rows() > 0)
    }

    async fn update_privilege(
        &self,
        user_id: u64,
        digest: &Digest,
        privilege: Privilege,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            UPDATE_PRIVILEGE,
            params! {
                "user_id" => user_id,
                "digest" => digest.as_str(),
                "privilege" => privilege.as_str(),
            },
        )
        .await?;
        Ok(conn.affected_rows() > 0)
    }

    async fn counts(&self, user_id: u64, now: DateTime<Utc>) -> Result<TokenCounts, StoreError> {
        let row: Option<(u64, u64)> = self
            .pool
            .get_conn()
            .await?
            .exec_first(
                COUNTS,
                params! { "user_id" => user_id, "now" => now.naive_utc() },
            )
            .await?;
        let (valid, total) = row.unwrap_or((0, 0));
        Ok(TokenCounts {
            valid,
            invalid: total.saturating_sub(valid),
        })
    }

    async fn list_valid(
        &self,
        user_id: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let rows: Vec<Row> = self
            .pool
            .get_conn()
            .await?
            .exec(
                LIST_VALID,
                params! { "user_id" => user_id, "now" => now.naive_utc() },
            )
            .await?;
        rows.into_iter().map(record_from_row).collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.pool.get_conn().await?.ping().await?;
        Ok(())
    }
}

/// One statement adding every delta of a chunk: a derived table of `(id, uses, at)` rows
/// joined to `api_tokens`.
fn batch_usage_sql(rows: usize) -> String {
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

/// Inside a transaction body only driver errors travel; a corrupt row becomes one.
fn corrupt(err: StoreError) -> mysql_async::Error {
    mysql_async::Error::Other(err.to_string().into())
}

const INSERT_BAN: &str =
    "INSERT IGNORE INTO rate_limit_bans (limiter, ban_key, reason, created_at) \
    VALUES (:limiter, :ban_key, :reason, :created_at)";
const LIST_BANS: &str =
    "SELECT limiter, ban_key, reason, created_at FROM rate_limit_bans ORDER BY created_at, limiter";
const DELETE_BAN: &str =
    "DELETE FROM rate_limit_bans WHERE limiter = :limiter AND ban_key = :ban_key";

#[async_trait]
impl BanStore for MySqlStore {
    async fn insert_ban(&self, ban: &BanRecord) -> Result<(), StoreError> {
        self.pool
            .get_conn()
            .await?
            .exec_drop(
                INSERT_BAN,
                params! {
                    "limiter" => ban.limiter.as_str(),
                    "ban_key" => ban.key.as_str(),
                    "reason" => ban.reason.as_str(),
                    "created_at" => ban.created_at.naive_utc(),
                },
            )
            .await?;
        Ok(())
    }

    async fn list_bans(&self) -> Result<Vec<BanRecord>, StoreError> {
        let rows: Vec<(String, String, String, NaiveDateTime)> =
            self.pool.get_conn().await?.query(LIST_BANS).await?;
        Ok(rows
            .into_iter()
            .map(|(limiter, key, reason, created_at)| BanRecord {
                limiter,
                key,
                reason,
                created_at: utc(created_at),
            })
            .collect())
    }

    async fn delete_ban(&self, limiter: &str, key: &str) -> Result<bool, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            DELETE_BAN,
            params! { "limiter" => limiter, "ban_key" => key },
        )
        .await?;
        Ok(conn.affected_rows() > 0)
    }
}
