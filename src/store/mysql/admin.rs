//! What the admin API needs of MySQL: metadata changes, filtered listings, the audit log.

use chrono::NaiveDateTime;
use mysql_async::prelude::*;
use mysql_async::{params, Row, Value};

use super::rows::{record_from_row, select_tokens, utc};
use super::{corrupt, write_event, MySqlStore, TxEnd};
use crate::store::AuditKind;
use crate::store::{
    Audit, AuditEvent, MetadataChange, MetadataOutcome, StoreError, TokenQuery, TokenRecord,
    TokenStatus,
};

const FIND_BY_ID_FOR_UPDATE: &str = select_tokens!("WHERE id = :id FOR UPDATE");
const UPDATE_METADATA: &str = "UPDATE api_tokens SET metadata = :metadata WHERE id = :id";
const LIST_EVENTS: &str = "SELECT id, token_id, event, actor, detail, created_at \
    FROM audit_events WHERE token_id = ? ORDER BY id";
const IS_VALID: &str = "(valid = 1 AND (expires_at IS NULL OR expires_at > ?))";

impl MySqlStore {
    /// Applies a merge-patch or a replacement under the token's row lock.
    pub(super) async fn change_metadata(
        &self,
        token_id: u64,
        change: &MetadataChange,
        audit: &Audit,
    ) -> Result<MetadataOutcome, StoreError> {
        self.in_transaction(|tx| {
            let (change, audit) = (change.clone(), audit.clone());
            Box::pin(async move {
                let row: Option<Row> = tx
                    .exec_first(FIND_BY_ID_FOR_UPDATE, params! { "id" => token_id })
                    .await?;
                let Some(record) = row.map(record_from_row).transpose().map_err(corrupt)? else {
                    return Ok(TxEnd::Rollback(MetadataOutcome::NotFound));
                };
                let mut metadata = record.metadata;
                let detail = match change.apply_to(&mut metadata) {
                    Ok(detail) => detail,
                    Err(err) => return Ok(TxEnd::Rollback(MetadataOutcome::Invalid(err))),
                };
                tx.exec_drop(
                    UPDATE_METADATA,
                    params! { "id" => token_id, "metadata" => metadata.to_stored() },
                )
                .await?;
                write_event(
                    tx,
                    Some(token_id),
                    AuditKind::MetadataUpdated,
                    &audit,
                    detail,
                )
                .await?;
                Ok(TxEnd::Commit(MetadataOutcome::Updated(metadata)))
            })
        })
        .await
    }

    /// One page of a user's tokens, newest first.
    pub(super) async fn query_tokens(
        &self,
        query: &TokenQuery,
    ) -> Result<Vec<TokenRecord>, StoreError> {
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
            // The key is checked to be [A-Za-z0-9_]{1,40} before it gets here.
            // As bytes: the JSON text's collation would pad trailing spaces.
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
        let rows: Vec<Row> = self.pool.get_conn().await?.exec(sql, params).await?;
        rows.into_iter().map(record_from_row).collect()
    }

    pub(super) async fn token_events(&self, token_id: u64) -> Result<Vec<AuditEvent>, StoreError> {
        let rows: Vec<(u64, Option<u64>, String, String, String, NaiveDateTime)> = self
            .pool
            .get_conn()
            .await?
            .exec(LIST_EVENTS, (token_id,))
            .await?;
        events_from_rows(rows)
    }
}

/// Audit rows as events.
pub(super) fn events_from_rows(
    rows: Vec<(u64, Option<u64>, String, String, String, NaiveDateTime)>,
) -> Result<Vec<AuditEvent>, StoreError> {
    rows.into_iter()
        .map(|(id, token_id, event, actor, detail, created_at)| {
            Ok(AuditEvent {
                id,
                token_id,
                event,
                actor,
                detail: serde_json::from_str(&detail)
                    .map_err(|_| StoreError::CorruptRow("audit_events.detail".into()))?,
                created_at: utc(created_at),
            })
        })
        .collect()
}
