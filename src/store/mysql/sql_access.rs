//! MySQL: statements on roles, their grants and what tokens hold.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use mysql_async::prelude::*;
use mysql_async::{Params, Value};

use super::rows::utc;
use super::tx::{on, MySqlTx};
use crate::domain::access::{Grant, RoleDescription, RoleName, RoleRecord, TokenAccess};
use crate::store::access_sql as sql;
use crate::store::backend::{AccessSql, Held, Lock, RoleRow};
use crate::store::StoreError;

type RoleTuple = (String, Option<String>, NaiveDateTime, NaiveDateTime, u64);

const LOCK_ROLES: &str = "SELECT id FROM access_lock WHERE id = 1 FOR UPDATE";
const INSERT_ROLE: &str =
    "INSERT IGNORE INTO roles (name, description, created_at, updated_at) VALUES (?, ?, ?, ?)";

fn positional(values: Vec<Value>) -> Params {
    if values.is_empty() {
        Params::Empty
    } else {
        Params::Positional(values)
    }
}

fn held_rows(rows: Vec<(u64, i64, String)>) -> Result<Vec<(u64, Held, String)>, StoreError> {
    rows.into_iter()
        .map(|(id, code, name)| {
            let held = Held::from_code(code)
                .ok_or_else(|| StoreError::CorruptRow("access row kind".into()))?;
            Ok((id, held, name))
        })
        .collect()
}

impl MySqlTx {
    /// One multi-row insert of `(id, name)` rows; nothing when there are no names.
    async fn insert_held(
        &mut self,
        statement: String,
        id: u64,
        names: impl ExactSizeIterator<Item = String>,
    ) -> Result<(), StoreError> {
        if names.len() == 0 {
            return Ok(());
        }
        let values = names.flat_map(|name| [id.into(), name.into()]).collect();
        self.change(&statement, positional(values)).await?;
        Ok(())
    }
}

#[async_trait]
impl AccessSql for MySqlTx {
    async fn lock_roles(&mut self) -> Result<(), StoreError> {
        let _: Option<u8> = on!(self, |q| q.query_first(LOCK_ROLES).await)?;
        Ok(())
    }

    async fn count_roles(&mut self) -> Result<u64, StoreError> {
        let count: Option<u64> = on!(self, |q| q.query_first(sql::COUNT_ROLES).await)?;
        Ok(count.unwrap_or(0))
    }

    async fn role_rows(
        &mut self,
        name: Option<&RoleName>,
        lock: Lock,
    ) -> Result<Vec<RoleRow>, StoreError> {
        let lock = match lock {
            Lock::No => "",
            Lock::ForUpdate => " FOR UPDATE",
        };
        let (statement, params) = match name {
            Some(name) => (
                format!("{} WHERE r.name = ?{lock}", sql::ROLE_ROWS),
                positional(vec![name.as_str().into()]),
            ),
            None => (
                format!("{} ORDER BY r.name{lock}", sql::ROLE_ROWS),
                Params::Empty,
            ),
        };
        let rows: Vec<RoleTuple> = on!(self, |q| q.exec(statement.as_str(), params).await)?;
        Ok(rows
            .into_iter()
            .map(
                |(name, description, created_at, updated_at, tokens)| RoleRow {
                    name,
                    description,
                    created_at: utc(created_at),
                    updated_at: utc(updated_at),
                    tokens,
                },
            )
            .collect())
    }

    async fn role_grants(
        &mut self,
        name: Option<&RoleName>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(match name {
            Some(name) => {
                let params = positional(vec![name.as_str().into()]);
                on!(self, |q| q.exec(sql::ROLE_GRANTS_OF, params).await)?
            }
            None => on!(self, |q| q.query(sql::ALL_ROLE_GRANTS).await)?,
        })
    }

    async fn insert_role(&mut self, role: &RoleRecord) -> Result<bool, StoreError> {
        let params = positional(vec![
            role.name.as_str().into(),
            role.description
                .as_ref()
                .map(RoleDescription::as_str)
                .into(),
            role.created_at.naive_utc().into(),
            role.updated_at.naive_utc().into(),
        ]);
        Ok(self.change(INSERT_ROLE, params).await? > 0)
    }

    async fn set_role(
        &mut self,
        name: &RoleName,
        description: Option<&RoleDescription>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let params = positional(vec![
            description.map(RoleDescription::as_str).into(),
            at.naive_utc().into(),
            name.as_str().into(),
        ]);
        self.change(sql::SET_ROLE, params).await?;
        Ok(())
    }

    async fn add_role_grants(
        &mut self,
        name: &RoleName,
        grants: &[Grant],
    ) -> Result<(), StoreError> {
        if grants.is_empty() {
            return Ok(());
        }
        let statement = format!("INSERT IGNORE {}", sql::role_grant_rows(grants.len()));
        let values = grants
            .iter()
            .flat_map(|grant| [name.as_str().into(), grant.to_string().into()])
            .collect();
        self.change(&statement, positional(values)).await?;
        Ok(())
    }

    async fn remove_role_grants(
        &mut self,
        name: &RoleName,
        grants: &[Grant],
    ) -> Result<(), StoreError> {
        if grants.is_empty() {
            return Ok(());
        }
        let statement = sql::remove_role_grants(grants.len());
        let values = std::iter::once(name.as_str().into())
            .chain(grants.iter().map(|grant| grant.to_string().into()))
            .collect();
        self.change(&statement, positional(values)).await?;
        Ok(())
    }

    async fn delete_role(&mut self, name: &RoleName) -> Result<(), StoreError> {
        for statement in sql::DELETE_ROLE {
            self.change(statement, positional(vec![name.as_str().into()]))
                .await?;
        }
        Ok(())
    }

    async fn existing_roles(&mut self, names: &[RoleName]) -> Result<Vec<String>, StoreError> {
        let statement = format!("{} LOCK IN SHARE MODE", sql::existing_roles(names.len()));
        let values = names.iter().map(|name| name.as_str().into()).collect();
        let params = positional(values);
        Ok(on!(self, |q| q.exec(statement.as_str(), params).await)?)
    }

    async fn access_rows(&mut self, ids: &[u64]) -> Result<Vec<(u64, Held, String)>, StoreError> {
        let statement = sql::access_rows(ids.len());
        let values: Vec<Value> = (0..3)
            .flat_map(|_| ids.iter().map(|&id| Value::from(id)))
            .collect();
        let params = positional(values);
        let rows: Vec<(u64, i64, String)> =
            on!(self, |q| q.exec(statement.as_str(), params).await)?;
        held_rows(rows)
    }

    async fn all_access_rows(&mut self) -> Result<Vec<(u64, Held, String)>, StoreError> {
        let rows: Vec<(u64, i64, String)> = on!(self, |q| q.query(sql::ALL_ACCESS_ROWS).await)?;
        held_rows(rows)
    }

    async fn insert_access(&mut self, id: u64, access: &TokenAccess) -> Result<(), StoreError> {
        let roles = access.roles.iter().map(|role| role.as_str().to_owned());
        self.insert_held(sql::insert_token_roles(access.roles.len()), id, roles)
            .await?;
        let grants = access.permissions.iter().map(Grant::to_string);
        let statement = sql::insert_token_permissions(access.permissions.len());
        self.insert_held(statement, id, grants).await
    }

    async fn clear_access(&mut self, id: u64) -> Result<(), StoreError> {
        for statement in sql::CLEAR_ACCESS {
            self.change(statement, positional(vec![id.into()])).await?;
        }
        Ok(())
    }
}
