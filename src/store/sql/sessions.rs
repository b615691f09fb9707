//! Statements on the admin console's sessions (SPEC B14), and the one mapping of their row.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::audit::{actor_from, actor_values};
use super::{first, Row, Statement};
use crate::domain::session::ConsoleSession;
use crate::domain::Digest;
use crate::store::backend::Tx;
use crate::store::StoreError;

const INSERT: &str = "INSERT INTO console_sessions (id, credential_digest, actor_type, actor_id, \
    actor_name, csrf, created_at, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
const BY_ID: &str = "SELECT id, credential_digest, actor_type, actor_id, actor_name, csrf, \
    created_at, seen_at FROM console_sessions WHERE id = ?";
/// Never moves the time back (two requests may finish out of order).
const TOUCH: &str = "UPDATE console_sessions SET seen_at = ? WHERE id = ? AND seen_at < ?";
const DELETE: &str = "DELETE FROM console_sessions WHERE id = ?";
const DELETE_OF_CREDENTIAL: &str = "DELETE FROM console_sessions WHERE credential_digest = ?";
const PRUNE: &str = "DELETE FROM console_sessions WHERE created_at < ? OR seen_at < ?";

fn session_from(row: &Row) -> Result<ConsoleSession, StoreError> {
    let corrupt = |what: &str| StoreError::CorruptRow(format!("console_sessions.{what}"));
    Ok(ConsoleSession {
        id: Digest::parse(&row.string(0)?).ok_or_else(|| corrupt("id"))?,
        credential: Digest::parse(&row.string(1)?).ok_or_else(|| corrupt("credential_digest"))?,
        actor: actor_from(row, 2)?,
        csrf: row.string(5)?,
        created_at: row.time(6)?,
        seen_at: row.time(7)?,
    })
}

/// Statements on console sessions.
#[async_trait]
pub trait SessionSql {
    async fn insert_session(&mut self, session: &ConsoleSession) -> Result<(), StoreError>;
    async fn session(&mut self, id: &Digest) -> Result<Option<ConsoleSession>, StoreError>;
    async fn touch_session(&mut self, id: &Digest, at: DateTime<Utc>) -> Result<(), StoreError>;
    async fn delete_session(&mut self, id: &Digest) -> Result<(), StoreError>;
    /// Every session opened with the credential whose secret has this digest.
    async fn delete_sessions_of(&mut self, credential: &Digest) -> Result<u64, StoreError>;
    /// Sessions begun before `created_before` or last seen before `seen_before`.
    async fn prune_sessions(
        &mut self,
        created_before: DateTime<Utc>,
        seen_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

#[async_trait]
impl<T: Tx + ?Sized> SessionSql for T {
    async fn insert_session(&mut self, session: &ConsoleSession) -> Result<(), StoreError> {
        let [kind, actor_id, actor_name] = actor_values(&session.actor);
        let args = vec![
            session.id.as_str().into(),
            session.credential.as_str().into(),
            kind,
            actor_id,
            actor_name,
            session.csrf.as_str().into(),
            session.created_at.into(),
            session.seen_at.into(),
        ];
        self.execute(Statement::new(INSERT, args)).await?;
        Ok(())
    }

    async fn session(&mut self, id: &Digest) -> Result<Option<ConsoleSession>, StoreError> {
        first(self, Statement::new(BY_ID, vec![id.as_str().into()]))
            .await?
            .as_ref()
            .map(session_from)
            .transpose()
    }

    async fn touch_session(&mut self, id: &Digest, at: DateTime<Utc>) -> Result<(), StoreError> {
        let args = vec![at.into(), id.as_str().into(), at.into()];
        self.execute(Statement::new(TOUCH, args)).await?;
        Ok(())
    }

    async fn delete_session(&mut self, id: &Digest) -> Result<(), StoreError> {
        self.execute(Statement::new(DELETE, vec![id.as_str().into()]))
            .await?;
        Ok(())
    }

    async fn delete_sessions_of(&mut self, credential: &Digest) -> Result<u64, StoreError> {
        let args = vec![credential.as_str().into()];
        self.execute(Statement::new(DELETE_OF_CREDENTIAL, args))
            .await
    }

    async fn prune_sessions(
        &mut self,
        created_before: DateTime<Utc>,
        seen_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let args = vec![created_before.into(), seen_before.into()];
        self.execute(Statement::new(PRUNE, args)).await
    }
}
