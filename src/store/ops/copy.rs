//! Whole-store export and import, ids and times kept as they are (`iam-tokens copy`).

use crate::store::sql::families::*;
use std::sync::Arc;

use async_trait::async_trait;

use super::access::{assemble, roles_in};
use super::{done, work, StoreOps};
use crate::store::backend::{Backend, Lock, TxEnd};
use crate::store::{CopyStore, RowCounts, Snapshot, StoreError};

#[async_trait]
impl<B: Backend> CopyStore for StoreOps<B> {
    async fn export(&self) -> Result<Snapshot, StoreError> {
        self.backend
            .read(work(|tx| {
                Box::pin(async move {
                    let mut tokens = tx.all_tokens().await?;
                    let mut held = assemble(tx.all_access_rows().await?)?;
                    for token in &mut tokens {
                        token.access = held.remove(&token.id).unwrap_or_default();
                    }
                    let roles = roles_in(tx, None, Lock::No).await?;
                    let events = tx.all_events().await?;
                    let bans = tx.list_bans().await?;
                    let (limits, credits) = tx.all_quota_rows().await?;
                    let credentials = tx.credentials().await?;
                    let owner_states = tx.disabled_owners().await?;
                    let webhooks = tx.endpoints_where(None, false).await?;
                    let webhook_events = tx.all_outbox().await?;
                    let webhook_deliveries = tx.all_deliveries().await?;
                    done(Snapshot {
                        webhooks,
                        webhook_events,
                        webhook_deliveries,
                        credentials,
                        owner_states,
                        tokens,
                        roles,
                        events,
                        bans,
                        limits,
                        credits,
                    })
                })
            }))
            .await
    }

    async fn import(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let snapshot = Arc::new(snapshot.clone());
        self.backend
            .write(work(move |tx| {
                let snapshot = snapshot.clone();
                Box::pin(async move {
                    tx.clear().await?;
                    for role in &snapshot.roles {
                        tx.insert_role(role).await?;
                        tx.add_role_grants(&role.name, &role.permissions).await?;
                    }
                    for token in &snapshot.tokens {
                        tx.insert_token_row(token).await?;
                        tx.insert_access(token.id, &token.access).await?;
                    }
                    for event in &snapshot.events {
                        tx.insert_event_row(event).await?;
                    }
                    for (user, disabled) in &snapshot.owner_states {
                        tx.disable_owner(*user, disabled).await?;
                    }
                    for credential in &snapshot.credentials {
                        tx.insert_credential_row(credential).await?;
                    }
                    for endpoint in &snapshot.webhooks {
                        tx.insert_endpoint_row(endpoint).await?;
                    }
                    for row in &snapshot.webhook_events {
                        tx.insert_outbox_row(row).await?;
                    }
                    for delivery in &snapshot.webhook_deliveries {
                        tx.insert_delivery_row(delivery).await?;
                    }
                    for ban in &snapshot.bans {
                        tx.insert_ban(ban).await?;
                    }
                    // Exported sorted by subject: one replacement per subject.
                    let subjects = snapshot
                        .limits
                        .chunk_by(|a, b| (&a.scope, a.subject) == (&b.scope, b.subject));
                    for rows in subjects {
                        let (scope, subject) = (&rows[0].scope, rows[0].subject);
                        tx.replace_limits(scope, subject, rows).await?;
                    }
                    for row in &snapshot.credits {
                        tx.replace_credits(&row.scope, row.subject, Some(row))
                            .await?;
                    }
                    Ok(TxEnd::Commit(()))
                })
            }))
            .await
    }

    async fn row_counts(&self) -> Result<RowCounts, StoreError> {
        self.backend
            .read(work(|tx| {
                Box::pin(async move { done(tx.row_counts().await?) })
            }))
            .await
    }
}
