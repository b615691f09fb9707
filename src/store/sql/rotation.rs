//! Statements of a rotation with a grace period (SPEC B10).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{id, Statement};
use crate::store::backend::Tx;
use crate::store::StoreError;

const MARK_REPLACED: &str =
    "UPDATE api_tokens SET replaced_by = ?, rotated_at = ?, expires_at = ? WHERE id = ?";
/// The valid keys this token replaced whose grace still runs at the bound time.
const IN_GRACE_FOR: &str = "SELECT id FROM api_tokens \
    WHERE replaced_by = ? AND valid = 1 AND expires_at > ?";
const END_GRACE: &str = "UPDATE api_tokens SET expires_at = ? WHERE id = ?";

/// Statements of a rotation with a grace period.
#[async_trait]
pub trait RotationSql {
    /// The old key verifies until `grace_ends_at`, charging `replaced_by`'s limits and credits.
    async fn mark_replaced(
        &mut self,
        old: u64,
        replaced_by: u64,
        at: DateTime<Utc>,
        grace_ends_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The keys `token` replaced that still verify at `now` (a lineage in grace).
    async fn in_grace_for(
        &mut self,
        token: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<u64>, StoreError>;
    /// Ends a key's grace at `now`.
    async fn end_grace(&mut self, token: u64, now: DateTime<Utc>) -> Result<(), StoreError>;
}

#[async_trait]
impl<T: Tx + ?Sized> RotationSql for T {
    async fn mark_replaced(
        &mut self,
        old: u64,
        replaced_by: u64,
        at: DateTime<Utc>,
        grace_ends_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let args = vec![id(replaced_by), at.into(), grace_ends_at.into(), id(old)];
        self.execute(Statement::new(MARK_REPLACED, args)).await?;
        Ok(())
    }

    async fn in_grace_for(
        &mut self,
        token: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<u64>, StoreError> {
        let rows = self
            .fetch(Statement::new(IN_GRACE_FOR, vec![id(token), now.into()]))
            .await?;
        rows.iter().map(|row| row.u64(0)).collect()
    }

    async fn end_grace(&mut self, token: u64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let args = vec![now.into(), id(token)];
        self.execute(Statement::new(END_GRACE, args)).await?;
        Ok(())
    }
}
