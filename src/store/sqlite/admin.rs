//! What the admin API needs of SQLite: metadata changes, filtered listings, the audit log.

use rusqlite::params;

use super::rows::{from_ms, record_from_row, to_sql_id, TOKEN_COLUMNS};
use super::tokens::find;
use super::{write_event, SqliteStore};
use crate::store::AuditKind;
use crate::store::{
    Audit, AuditEvent, MetadataChange, MetadataOutcome, StoreError, TokenQuery, TokenRecord,
    TokenStatus,
};

pub(super) const IS_VALID: &str = "(valid = 1 AND (expires_at IS NULL OR expires_at > ?))";

impl SqliteStore {
    pub(super) async fn change_metadata(
        &self,
        token_id: u64,
        change: &MetadataChange,
        audit: &Audit,
    ) -> Result<MetadataOutcome, StoreError> {
        let (change, audit) = (change.clone(), audit.clone());
        self.write(move |tx| {
            let Some(record) = find(tx, "id = ?1", [to_sql_id(token_id)])? else {
                return Ok((false, MetadataOutcome::NotFound));
            };
            let mut metadata = record.metadata;
            let detail = match change.apply_to(&mut metadata) {
                Ok(detail) => detail,
                Err(err) => return Ok((false, MetadataOutcome::Invalid(err))),
            };
            tx.execute(
                "UPDATE api_tokens SET metadata = ?1 WHERE id = ?2",
                params![metadata.to_stored(), to_sql_id(token_id)],
            )?;
            write_event(
                tx,
                Some(token_id),
                AuditKind::MetadataUpdated,
                &audit,
                detail,
            )?;
            Ok((true, MetadataOutcome::Updated(metadata)))
        })
        .await
    }

    pub(super) async fn query_tokens(
        &self,
        query: &TokenQuery,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let query = query.clone();
        self.run(move |conn| {
            let mut sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = ?");
            let mut args: Vec<rusqlite::types::Value> = vec![query.user_id.as_i64().into()];
            let now = query.now.timestamp_millis();
            match query.status {
                TokenStatus::All => {}
                TokenStatus::Valid => {
                    sql.push_str(&format!(" AND {IS_VALID}"));
                    args.push(now.into());
                }
                TokenStatus::Invalid => {
                    sql.push_str(&format!(" AND NOT {IS_VALID}"));
                    args.push(now.into());
                }
            }
            if let Some((key, value)) = &query.metadata {
                // As MySQL's JSON_UNQUOTE: strings bare, numbers as written, true/false/null.
                sql.push_str(
                    " AND (CASE json_type(metadata, ?1) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
                     WHEN 'null' THEN 'null' ELSE CAST(json_extract(metadata, ?1) AS TEXT) END) = ?",
                );
                let path = format!("$.\"{key}\"");
                sql = sql.replace("?1", "?");
                args.push(path.clone().into());
                args.push(path.into());
                args.push(value.clone().into());
            }
            if let Some(before) = query.before_id {
                sql.push_str(" AND id < ?");
                args.push(to_sql_id(before).into());
            }
            sql.push_str(" ORDER BY id DESC LIMIT ?");
            args.push(i64::from(query.limit).into());
            let mut statement = conn.prepare(&sql)?;
            let mut rows = statement.query(rusqlite::params_from_iter(args))?;
            let mut records = Vec::new();
            while let Some(row) = rows.next()? {
                records.push(record_from_row(row)?);
            }
            Ok(records)
        })
        .await
    }

    pub(super) async fn token_events(&self, token_id: u64) -> Result<Vec<AuditEvent>, StoreError> {
        self.run(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, token_id, event, actor, detail, created_at FROM audit_events \
                 WHERE token_id = ?1 ORDER BY id",
            )?;
            let rows = statement.query_map([to_sql_id(token_id)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })?;
            rows.map(|row| {
                let (id, token_id, event, actor, detail, created_at) = row?;
                Ok(AuditEvent {
                    id: id as u64,
                    token_id: token_id.map(|t| t as u64),
                    event,
                    actor,
                    detail: serde_json::from_str(&detail)
                        .map_err(|_| StoreError::CorruptRow("audit_events.detail".into()))?,
                    created_at: from_ms(created_at),
                })
            })
            .collect()
        })
        .await
    }
}
