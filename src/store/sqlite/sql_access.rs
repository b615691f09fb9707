//! SQLite: statements on roles, their grants and what tokens hold.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter};

use super::rows::{from_ms, to_sql_id};
use super::tx::SqliteTx;
use crate::domain::access::{Grant, RoleDescription, RoleName, RoleRecord, TokenAccess};
use crate::store::access_sql as sql;
use crate::store::backend::{AccessSql, Held, Lock, RoleRow};
use crate::store::StoreError;

const INSERT_ROLE: &str = "INSERT OR IGNORE INTO roles (name, description, created_at, \
    updated_at) VALUES (?1, ?2, ?3, ?4)";

impl SqliteTx<'_> {
    /// Rows of `(token, what, name)` from `statement`.
    fn held_rows(
        &self,
        statement: &str,
        values: Vec<Value>,
    ) -> Result<Vec<(u64, Held, String)>, StoreError> {
        let mut statement = self.conn.prepare_cached(statement)?;
        let mut rows = statement.query(params_from_iter(values))?;
        let mut held = Vec::new();
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let what = Held::from_code(row.get(1)?)
                .ok_or_else(|| StoreError::CorruptRow("access row kind".into()))?;
            held.push((id as u64, what, row.get(2)?));
        }
        Ok(held)
    }

    /// One multi-row insert of `(id, name)` rows; nothing when there are no names.
    fn insert_held(
        &self,
        statement: &str,
        id: u64,
        names: impl ExactSizeIterator<Item = String>,
    ) -> Result<(), StoreError> {
        if names.len() == 0 {
            return Ok(());
        }
        let id = to_sql_id(id);
        let values = names.flat_map(|name| [Value::Integer(id), Value::Text(name)]);
        self.execute(statement, params_from_iter(values))?;
        Ok(())
    }

    fn strings(&self, statement: &str, values: Vec<Value>) -> Result<Vec<String>, StoreError> {
        let mut statement = self.conn.prepare_cached(statement)?;
        let rows = statement.query_map(params_from_iter(values), |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

#[async_trait]
impl AccessSql for SqliteTx<'_> {
    async fn lock_roles(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn count_roles(&mut self) -> Result<u64, StoreError> {
        let count: i64 = self
            .conn
            .query_row(sql::COUNT_ROLES, [], |row| row.get(0))?;
        Ok(count as u64)
    }

    async fn role_rows(
        &mut self,
        name: Option<&RoleName>,
        _: Lock,
    ) -> Result<Vec<RoleRow>, StoreError> {
        let (statement, values) = match name {
            Some(name) => (
                format!("{} WHERE r.name = ?", sql::ROLE_ROWS),
                vec![text(name.as_str())],
            ),
            None => (format!("{} ORDER BY r.name", sql::ROLE_ROWS), Vec::new()),
        };
        let mut statement = self.conn.prepare_cached(&statement)?;
        let rows = statement.query_map(params_from_iter(values), |row| {
            Ok(RoleRow {
                name: row.get(0)?,
                description: row.get(1)?,
                created_at: from_ms(row.get(2)?),
                updated_at: from_ms(row.get(3)?),
                tokens: row.get::<_, i64>(4)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn role_grants(
        &mut self,
        name: Option<&RoleName>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let (statement, values) = match name {
            Some(name) => (sql::ROLE_GRANTS_OF, vec![text(name.as_str())]),
            None => (sql::ALL_ROLE_GRANTS, Vec::new()),
        };
        let mut statement = self.conn.prepare_cached(statement)?;
        let rows = statement.query_map(params_from_iter(values), |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn insert_role(&mut self, role: &RoleRecord) -> Result<bool, StoreError> {
        let inserted = self.execute(
            INSERT_ROLE,
            params![
                role.name.as_str(),
                role.description.as_ref().map(RoleDescription::as_str),
                role.created_at.timestamp_millis(),
                role.updated_at.timestamp_millis(),
            ],
        )?;
        Ok(inserted > 0)
    }

    async fn set_role(
        &mut self,
        name: &RoleName,
        description: Option<&RoleDescription>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.execute(
            sql::SET_ROLE,
            params![
                description.map(RoleDescription::as_str),
                at.timestamp_millis(),
                name.as_str(),
            ],
        )?;
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
        let statement = format!("INSERT OR IGNORE {}", sql::role_grant_rows(grants.len()));
        let values = grants
            .iter()
            .flat_map(|grant| [text(name.as_str()), Value::Text(grant.to_string())]);
        self.execute(&statement, params_from_iter(values))?;
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
        let values = std::iter::once(text(name.as_str()))
            .chain(grants.iter().map(|grant| Value::Text(grant.to_string())));
        self.execute(&statement, params_from_iter(values))?;
        Ok(())
    }

    async fn delete_role(&mut self, name: &RoleName) -> Result<(), StoreError> {
        for statement in sql::DELETE_ROLE {
            self.execute(statement, [name.as_str()])?;
        }
        Ok(())
    }

    async fn existing_roles(&mut self, names: &[RoleName]) -> Result<Vec<String>, StoreError> {
        let values = names.iter().map(|name| text(name.as_str())).collect();
        self.strings(&sql::existing_roles(names.len()), values)
    }

    async fn access_rows(&mut self, ids: &[u64]) -> Result<Vec<(u64, Held, String)>, StoreError> {
        let values = (0..3)
            .flat_map(|_| ids.iter().map(|&id| Value::Integer(to_sql_id(id))))
            .collect();
        self.held_rows(&sql::access_rows(ids.len()), values)
    }

    async fn all_access_rows(&mut self) -> Result<Vec<(u64, Held, String)>, StoreError> {
        self.held_rows(sql::ALL_ACCESS_ROWS, Vec::new())
    }

    async fn insert_access(&mut self, id: u64, access: &TokenAccess) -> Result<(), StoreError> {
        let roles = access.roles.iter().map(|role| role.as_str().to_owned());
        self.insert_held(&sql::insert_token_roles(access.roles.len()), id, roles)?;
        let grants = access.permissions.iter().map(Grant::to_string);
        let statement = sql::insert_token_permissions(access.permissions.len());
        self.insert_held(&statement, id, grants)
    }

    async fn clear_access(&mut self, id: u64) -> Result<(), StoreError> {
        for statement in sql::CLEAR_ACCESS {
            self.execute(statement, [to_sql_id(id)])?;
        }
        Ok(())
    }
}
