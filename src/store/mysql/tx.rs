//! The MySQL statements: one `Tx` method, one statement. Parameterised, named columns, UTC.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use mysql_async::prelude::*;
use mysql_async::{params, Conn, Row, Transaction, Value};

use super::rows::{insert_params, record_from_row, select_tokens, utc};
use super::{server_code, ER_DUP_ENTRY};
use crate::store::backend::{Lock, Tx};
use crate::store::{
    Audit, AuditEvent, AuditKind, BanRecord, NewToken, RowCounts, StoreError, TokenCounts,
    TokenQuery, TokenRecord, TokenStatus, UsageDelta,
};
use crate::token::{Digest, IpRestriction, Metadata, Privilege, UserId};

const BY_DIGEST: &str = select_tokens!("WHERE api_token = :digest");
const BY_DIGEST_FOR_UPDATE: &str = select_tokens!("WHERE api_token = :digest FOR UPDATE");
const BY_ID: &str = select_tokens!("WHERE id = :id");
const BY_ID_FOR_UPDATE: &str = select_tokens!("WHERE id = :id FOR UPDATE");
const VALID_OF_OWNER: &str = select_tokens!("WHERE id = :id AND user_id = :user_id AND valid = 1");
const EXPIRED_VALID: &str = "SELECT id FROM api_tokens \
    WHERE user_id = :user_id AND valid = 1 AND expires_at <= :now";
const COUNT_VALID: &str = "SELECT COUNT(*) FROM api_tokens WHERE user_id = :user_id AND valid = 1";
const COUNTS: &str = "SELECT \
    COALESCE(SUM(valid = 1 AND (expires_at IS NULL OR expires_at > :now)), 0), COUNT(*) \
    FROM api_tokens WHERE user_id = :user_id";
const LIST_VALID: &str = select_tokens!(
    "WHERE user_id = :user_id AND valid = 1 AND (expires_at IS NULL OR expires_at > :now) ",
    "ORDER BY id DESC"
);
const IS_VALID: &str = "(valid = 1 AND (expires_at IS NULL OR expires_at > ?))";
const LOCK_OWNER: &str = "INSERT INTO api_token_owners (user_id) VALUES (:user_id) \
    ON DUPLICATE KEY UPDATE user_id = user_id";
const INSERT_TOKEN: &str = "INSERT INTO api_tokens \
    (user_id, api_token, public_identifier, prefix, name, created_at, expires_at, \
     restricted_to_ip_address, privilege_type, metadata) \
    VALUES (:user_id, :digest, :public_identifier, :prefix, :name, :created_at, :expires_at, \
     :ips, :privilege, :metadata)";
const INVALIDATE: &str = "UPDATE api_tokens SET valid = 0 WHERE id = :id AND valid = 1";
const DELETE_TOKEN: &str = "DELETE FROM api_tokens WHERE id = :id";
const SET_IPS: &str = "UPDATE api_tokens SET restricted_to_ip_address = :ips WHERE id = :id";
const SET_PRIVILEGE: &str = "UPDATE api_tokens SET privilege_type = :privilege WHERE id = :id";
const SET_METADATA: &str = "UPDATE api_tokens SET metadata = :metadata WHERE id = :id";
const USAGE_OF: &str = "SELECT usage_count, last_used FROM api_tokens WHERE id = :id";
const RECORD_BATCH: &str = "INSERT INTO usage_flushes (flush_id, applied_at) VALUES (?, ?)";
const FORGET_BATCHES: &str = "DELETE FROM usage_flushes WHERE applied_at < ? LIMIT 1000";
/// Rows per batched usage statement (3 parameters each, far below the 65,535 limit).
const USAGE_CHUNK: usize = 500;
const INSERT_EVENT: &str = "INSERT INTO audit_events (token_id, event, actor, detail, created_at) \
    VALUES (?, ?, ?, ?, ?)";
const EVENTS_OF_TOKEN: &str = "SELECT id, token_id, event, actor, detail, created_at \
    FROM audit_events WHERE token_id = ? ORDER BY id";
const EVENTS_OF_NO_TOKEN: &str = "SELECT id, token_id, event, actor, detail, created_at \
    FROM audit_events WHERE token_id IS NULL ORDER BY id";
const ALL_EVENTS: &str =
    "SELECT id, token_id, event, actor, detail, created_at FROM audit_events ORDER BY id";
const INSERT_BAN: &str =
    "INSERT IGNORE INTO rate_limit_bans (limiter, ban_key, reason, created_at) \
    VALUES (:limiter, :ban_key, :reason, :created_at)";
const LIST_BANS: &str =
    "SELECT limiter, ban_key, reason, created_at FROM rate_limit_bans ORDER BY created_at, limiter";
/// Byte for byte: `utf8mb4_bin` pads trailing spaces, so equal lengths are required too.
const DELETE_BAN: &str = "DELETE FROM rate_limit_bans WHERE limiter = :limiter \
    AND ban_key = :ban_key AND LENGTH(ban_key) = LENGTH(:ban_key)";
const ALL_TOKENS: &str = select_tokens!("ORDER BY id");
const CLEAR: [&str; 4] = [
    "DELETE FROM audit_events",
    "DELETE FROM api_tokens",
    "DELETE FROM rate_limit_bans",
    "DELETE FROM usage_flushes",
];
const INSERT_TOKEN_ROW: &str = "INSERT INTO api_tokens (id, user_id, api_token, \
    public_identifier, prefix, name, created_at, expires_at, restricted_to_ip_address, last_used, \
    privilege_type, usage_count, valid, metadata) VALUES (:id, :user_id, :digest, \
    :public_identifier, :prefix, :name, :created_at, :expires_at, :ips, :last_used, :privilege, \
    :usage_count, :valid, :metadata)";
const INSERT_EVENT_ROW: &str =
    "INSERT INTO audit_events (id, token_id, event, actor, detail, created_at) \
    VALUES (?, ?, ?, ?, ?, ?)";
const COUNT_ROWS: &str = "SELECT (SELECT COUNT(*) FROM api_tokens), \
    (SELECT COUNT(*) FROM audit_events), (SELECT COUNT(*) FROM rate_limit_bans)";

type EventRow = (u64, Option<u64>, String, String, String, NaiveDateTime);

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

impl MySqlTx {
    async fn record(
        &mut self,
        sql: &str,
        params: mysql_async::Params,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<Row> = on!(self, |q| q.exec_first(sql, params).await)?;
        row.map(record_from_row).transpose()
    }

    async fn records(
        &mut self,
        sql: &str,
        params: mysql_async::Params,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let rows: Vec<Row> = on!(self, |q| q.exec(sql, params).await)?;
        rows.into_iter().map(record_from_row).collect()
    }

    /// Runs a statement; answers the rows it changed.
    async fn change(&mut self, sql: &str, params: mysql_async::Params) -> Result<u64, StoreError> {
        Ok(on!(self, |q| {
            q.exec_drop(sql, params).await?;
            q.affected_rows()
        }))
    }

    async fn events(
        &mut self,
        sql: &str,
        params: mysql_async::Params,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let rows: Vec<EventRow> = on!(self, |q| q.exec(sql, params).await)?;
        rows.into_iter().map(event_from_row).collect()
    }
}

fn event_from_row(
    (id, token_id, event, actor, detail, created_at): EventRow,
) -> Result<AuditEvent, StoreError> {
    Ok(AuditEvent {
        id,
        token_id,
        event,
        actor,
        detail: serde_json::from_str(&detail)
            .map_err(|_| StoreError::CorruptRow("audit_events.detail".into()))?,
        created_at: utc(created_at),
    })
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

#[async_trait]
impl Tx for MySqlTx {
    async fn token_by_digest(
        &mut self,
        digest: &Digest,
        lock: Lock,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let sql = match lock {
            Lock::No => BY_DIGEST,
            Lock::ForUpdate => BY_DIGEST_FOR_UPDATE,
        };
        self.record(sql, params! { "digest" => digest.as_str() })
            .await
    }

    async fn token_by_id(
        &mut self,
        id: u64,
        lock: Lock,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let sql = match lock {
            Lock::No => BY_ID,
            Lock::ForUpdate => BY_ID_FOR_UPDATE,
        };
        self.record(sql, params! { "id" => id }).await
    }

    async fn valid_token_of(
        &mut self,
        user_id: UserId,
        id: u64,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let params = params! { "id" => id, "user_id" => user_id.get() };
        self.record(VALID_OF_OWNER, params).await
    }

    async fn expired_valid_ids(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<u64>, StoreError> {
        let params = params! { "user_id" => user_id.get(), "now" => now.naive_utc() };
        Ok(on!(self, |q| q.exec(EXPIRED_VALID, params).await)?)
    }

    async fn count_valid(&mut self, user_id: UserId) -> Result<u64, StoreError> {
        let params = params! { "user_id" => user_id.get() };
        let count: Option<u64> = on!(self, |q| q.exec_first(COUNT_VALID, params).await)?;
        Ok(count.unwrap_or(0))
    }

    async fn counts(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<TokenCounts, StoreError> {
        let params = params! { "user_id" => user_id.get(), "now" => now.naive_utc() };
        let row: Option<(u64, u64)> = on!(self, |q| q.exec_first(COUNTS, params).await)?;
        let (valid, total) = row.unwrap_or((0, 0));
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
        let params = params! { "user_id" => user_id.get(), "now" => now.naive_utc() };
        self.records(LIST_VALID, params).await
    }

    async fn list_tokens(&mut self, query: &TokenQuery) -> Result<Vec<TokenRecord>, StoreError> {
        let mut sql = format!("{} WHERE user_id = ?", select_tokens!());
        let mut params: Vec<Value> = vec![query.user_id.get().into()];
        let now = query.now.naive_utc();
        match query.status {
            TokenStatus::All => {}
            TokenStatus::Valid => {
                sql.push_str(&format!(" AND {IS_VALID}"));
                params.push(now.into());
            }
            TokenStatus::Invalid => {
                sql.push_str(&format!(" AND NOT {IS_VALID}"));
                params.push(now.into());
            }
        }
        if let Some((key, value)) = &query.metadata {
            // The key is checked to be [A-Za-z0-9_]{1,40} before it gets here. Compared as
            // bytes: the JSON text's collation would pad trailing spaces.
            sql.push_str(
                " AND CAST(JSON_UNQUOTE(JSON_EXTRACT(metadata, ?)) AS BINARY) = CAST(? AS BINARY)",
            );
            params.push(format!("$.\"{key}\"").into());
            params.push(value.clone().into());
        }
        if let Some(before) = query.before_id {
            sql.push_str(" AND id < ?");
            params.push(before.into());
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        params.push(query.limit.into());
        self.records(&sql, params.into()).await
    }

    async fn lock_owner(&mut self, user_id: UserId) -> Result<(), StoreError> {
        self.change(LOCK_OWNER, params! { "user_id" => user_id.get() })
            .await?;
        Ok(())
    }

    async fn insert_token(&mut self, new: &NewToken) -> Result<Option<u64>, StoreError> {
        let inserted = on!(self, |q| {
            match q.exec_drop(INSERT_TOKEN, insert_params(new)).await {
                Ok(()) => Ok(q.last_insert_id()),
                Err(err) => Err(err),
            }
        });
        match inserted {
            Ok(id) => Ok(Some(id.unwrap_or_default())),
            Err(err) if server_code(&err) == Some(ER_DUP_ENTRY) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn invalidate(&mut self, id: u64) -> Result<bool, StoreError> {
        Ok(self.change(INVALIDATE, params! { "id" => id }).await? > 0)
    }

    async fn delete_token(&mut self, id: u64) -> Result<(), StoreError> {
        self.change(DELETE_TOKEN, params! { "id" => id }).await?;
        Ok(())
    }

    async fn set_ip_restriction(&mut self, id: u64, ips: &IpRestriction) -> Result<(), StoreError> {
        let params = params! { "id" => id, "ips" => ips.to_stored() };
        self.change(SET_IPS, params).await?;
        Ok(())
    }

    async fn set_privilege(&mut self, id: u64, privilege: Privilege) -> Result<(), StoreError> {
        let params = params! { "id" => id, "privilege" => privilege.as_str() };
        self.change(SET_PRIVILEGE, params).await?;
        Ok(())
    }

    async fn set_metadata(&mut self, id: u64, metadata: &Metadata) -> Result<(), StoreError> {
        let params = params! { "id" => id, "metadata" => metadata.to_stored() };
        self.change(SET_METADATA, params).await?;
        Ok(())
    }

    async fn add_usage(&mut self, deltas: &[UsageDelta]) -> Result<(), StoreError> {
        for chunk in deltas.chunks(USAGE_CHUNK) {
            let params: Vec<Value> = chunk
                .iter()
                .flat_map(|d| {
                    [
                        d.token_id.into(),
                        d.uses.into(),
                        d.last_used.naive_utc().into(),
                    ]
                })
                .collect();
            self.change(&batch_usage_sql(chunk.len()), params.into())
                .await?;
        }
        Ok(())
    }

    async fn usage_of(
        &mut self,
        id: u64,
    ) -> Result<Option<(u64, Option<DateTime<Utc>>)>, StoreError> {
        let row: Option<(u64, Option<NaiveDateTime>)> = on!(self, |q| q
            .exec_first(USAGE_OF, params! { "id" => id })
            .await)?;
        Ok(row.map(|(count, last)| (count, last.map(utc))))
    }

    async fn record_batch(
        &mut self,
        batch_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let params = (batch_id, at.naive_utc());
        match on!(self, |q| q.exec_drop(RECORD_BATCH, params).await) {
            Ok(()) => Ok(true),
            Err(err) if server_code(&err) == Some(ER_DUP_ENTRY) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    async fn forget_batches_before(&mut self, before: DateTime<Utc>) -> Result<(), StoreError> {
        self.change(FORGET_BATCHES, (before.naive_utc(),).into())
            .await?;
        Ok(())
    }

    async fn write_event(
        &mut self,
        token_id: Option<u64>,
        kind: AuditKind,
        audit: &Audit,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        let params = (
            token_id,
            kind.as_str(),
            audit.actor.to_string(),
            detail.to_string(),
            audit.at.naive_utc(),
        );
        self.change(INSERT_EVENT, params.into()).await?;
        Ok(())
    }

    async fn events_of(&mut self, token_id: Option<u64>) -> Result<Vec<AuditEvent>, StoreError> {
        match token_id {
            Some(id) => self.events(EVENTS_OF_TOKEN, (id,).into()).await,
            None => {
                self.events(EVENTS_OF_NO_TOKEN, mysql_async::Params::Empty)
                    .await
            }
        }
    }

    async fn insert_ban(&mut self, ban: &BanRecord) -> Result<bool, StoreError> {
        let params = params! {
            "limiter" => ban.limiter.as_str(),
            "ban_key" => ban.key.as_str(),
            "reason" => ban.reason.as_str(),
            "created_at" => ban.created_at.naive_utc(),
        };
        Ok(self.change(INSERT_BAN, params).await? > 0)
    }

    async fn list_bans(&mut self) -> Result<Vec<BanRecord>, StoreError> {
        let rows: Vec<(String, String, String, NaiveDateTime)> =
            on!(self, |q| q.query(LIST_BANS).await)?;
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

    async fn delete_ban(&mut self, limiter: &str, key: &str) -> Result<bool, StoreError> {
        let params = params! { "limiter" => limiter, "ban_key" => key };
        Ok(self.change(DELETE_BAN, params).await? > 0)
    }

    async fn all_tokens(&mut self) -> Result<Vec<TokenRecord>, StoreError> {
        self.records(ALL_TOKENS, mysql_async::Params::Empty).await
    }

    async fn all_events(&mut self) -> Result<Vec<AuditEvent>, StoreError> {
        self.events(ALL_EVENTS, mysql_async::Params::Empty).await
    }

    async fn clear(&mut self) -> Result<(), StoreError> {
        for statement in CLEAR {
            on!(self, |q| q.query_drop(statement).await)?;
        }
        Ok(())
    }

    async fn insert_token_row(&mut self, t: &TokenRecord) -> Result<(), StoreError> {
        let params = params! {
            "id" => t.id,
            "user_id" => t.user_id.get(),
            "digest" => t.digest.as_str(),
            "public_identifier" => t.public_identifier.as_str(),
            "prefix" => t.prefix.as_str(),
            "name" => t.name.as_str(),
            "created_at" => t.created_at.naive_utc(),
            "expires_at" => t.expires_at.map(|at| at.naive_utc()),
            "ips" => t.ip_restriction.to_stored(),
            "last_used" => t.last_used.map(|at| at.naive_utc()),
            "privilege" => t.privilege.as_str(),
            "usage_count" => t.usage_count,
            "valid" => u8::from(t.valid),
            "metadata" => t.metadata.to_stored(),
        };
        self.change(INSERT_TOKEN_ROW, params).await?;
        Ok(())
    }

    async fn insert_event_row(&mut self, e: &AuditEvent) -> Result<(), StoreError> {
        let params = (
            e.id,
            e.token_id,
            e.event.as_str(),
            e.actor.as_str(),
            e.detail.to_string(),
            e.created_at.naive_utc(),
        );
        self.change(INSERT_EVENT_ROW, params.into()).await?;
        Ok(())
    }

    async fn row_counts(&mut self) -> Result<RowCounts, StoreError> {
        let counts: Option<(u64, u64, u64)> = on!(self, |q| q.query_first(COUNT_ROWS).await)?;
        let (tokens, events, bans) = counts.unwrap_or_default();
        Ok(RowCounts {
            tokens,
            events,
            bans,
        })
    }

    async fn ping(&mut self) -> Result<(), StoreError> {
        match self {
            MySqlTx::Read(conn) => conn.ping().await?,
            MySqlTx::Write(tx) => tx.query_drop("SELECT 1").await?,
        }
        Ok(())
    }
}
