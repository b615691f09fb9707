//! Statements on the state of tokens and owners (SPEC B10): disabled with who and why, or not.

use async_trait::async_trait;

use super::audit::{actor_from, actor_values};
use super::{id, Statement, Value};
use crate::domain::state::{Disabled, StateReason};
use crate::domain::UserId;
use crate::store::backend::Tx;
use crate::store::StoreError;

const DISABLE_TOKEN: &str = "UPDATE api_tokens SET disabled_at = ?, disabled_reason = ?, \
    disabled_by_type = ?, disabled_by_id = ?, disabled_by_name = ? \
    WHERE id = ? AND disabled_at IS NULL";
const ENABLE_TOKEN: &str = "UPDATE api_tokens SET disabled_at = NULL, disabled_reason = NULL, \
    disabled_by_type = NULL, disabled_by_id = NULL, disabled_by_name = NULL \
    WHERE id = ? AND disabled_at IS NOT NULL";
const DISABLE_OWNER: &str = "owner_states (user_id, disabled_at, disabled_reason, \
    disabled_by_type, disabled_by_id, disabled_by_name) VALUES (?, ?, ?, ?, ?, ?)";
const ENABLE_OWNER: &str = "DELETE FROM owner_states WHERE user_id = ?";
const ALL_OWNERS: &str = "SELECT user_id, disabled_at, disabled_reason, disabled_by_type, \
    disabled_by_id, disabled_by_name FROM owner_states ORDER BY user_id";

/// A disabled state's five values: at, reason, and the actor's three.
fn disabled_values(disabled: &Disabled) -> Vec<Value> {
    let mut values = vec![
        disabled.at.into(),
        disabled.reason.as_ref().map(StateReason::as_str).into(),
    ];
    values.extend(actor_values(&disabled.by));
    values
}

/// Statements on the state of tokens and owners.
#[async_trait]
pub trait StateSql {
    /// Disables the token unless it is disabled already; whether it changed.
    async fn disable_token(&mut self, token: u64, how: &Disabled) -> Result<bool, StoreError>;
    /// Enables the token unless it is enabled already; whether it changed.
    async fn enable_token(&mut self, token: u64) -> Result<bool, StoreError>;
    /// Disables the owner unless it is disabled already; whether it changed.
    async fn disable_owner(&mut self, user: UserId, how: &Disabled) -> Result<bool, StoreError>;
    /// Enables the owner unless it is enabled already; whether it changed.
    async fn enable_owner(&mut self, user: UserId) -> Result<bool, StoreError>;
    /// Every disabled owner (`iam-tokens copy`).
    async fn disabled_owners(&mut self) -> Result<Vec<(UserId, Disabled)>, StoreError>;
}

#[async_trait]
impl<T: Tx + ?Sized> StateSql for T {
    async fn disable_token(&mut self, token: u64, how: &Disabled) -> Result<bool, StoreError> {
        let mut args = disabled_values(how);
        args.push(id(token));
        Ok(self.execute(Statement::new(DISABLE_TOKEN, args)).await? > 0)
    }

    async fn enable_token(&mut self, token: u64) -> Result<bool, StoreError> {
        let args = vec![id(token)];
        Ok(self.execute(Statement::new(ENABLE_TOKEN, args)).await? > 0)
    }

    async fn disable_owner(&mut self, user: UserId, how: &Disabled) -> Result<bool, StoreError> {
        let mut args = vec![user.into()];
        args.extend(disabled_values(how));
        let sql = format!("{} INTO {DISABLE_OWNER}", self.dialect().insert_ignore());
        Ok(self.execute(Statement::new(sql, args)).await? > 0)
    }

    async fn enable_owner(&mut self, user: UserId) -> Result<bool, StoreError> {
        let args = vec![user.into()];
        Ok(self.execute(Statement::new(ENABLE_OWNER, args)).await? > 0)
    }

    async fn disabled_owners(&mut self) -> Result<Vec<(UserId, Disabled)>, StoreError> {
        let rows = self.fetch(Statement::new(ALL_OWNERS, Vec::new())).await?;
        rows.iter()
            .map(|row| {
                let disabled = Disabled {
                    at: row.time(1)?,
                    reason: row.opt_string(2)?.map(StateReason::from_stored),
                    by: actor_from(row, 3)?,
                };
                Ok((row.user_id(0)?, disabled))
            })
            .collect()
    }
}
