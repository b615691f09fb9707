//! Statements on roles, their grants and what tokens hold.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{first, id, placeholders, tuples, Dialect, Row, Statement, Value};
use crate::domain::access::{Grant, RoleDescription, RoleName, RoleRecord, TokenAccess};
use crate::store::backend::{Held, Lock, RoleRow, Tx};
use crate::store::StoreError;

/// Serialises role creations: MySQL locks the `access_lock` row; SQLite's write transactions
/// are serial already.
const LOCK_ROLES: &str = "SELECT id FROM access_lock WHERE id = 1 FOR UPDATE";
const INSERT_ROLE: &str =
    "INSERT INTO roles (name, description, created_at, updated_at) VALUES (?, ?, ?, ?)";
/// A shared lock on the roles read, so that none is deleted before the transaction ends.
const SHARE_LOCK: [&str; 2] = [" LOCK IN SHARE MODE", ""];

/// What `ids.len()` tokens hold, as `(token_id, what, name)` rows (`Held` codes 0, 1, 2);
/// binds the ids three times.
fn access_rows(ids: usize) -> String {
    let list = placeholders(ids);
    format!(
        "SELECT token_id, 0, role_name FROM token_roles WHERE token_id IN ({list}) \
         UNION ALL SELECT token_id, 1, permission FROM token_permissions \
         WHERE token_id IN ({list}) \
         UNION ALL SELECT tr.token_id, 2, rp.permission FROM token_roles tr \
         JOIN role_permissions rp ON rp.role_name = tr.role_name WHERE tr.token_id IN ({list})"
    )
}

const ALL_ACCESS_ROWS: &str = "SELECT token_id, 0, role_name FROM token_roles \
    UNION ALL SELECT token_id, 1, permission FROM token_permissions";

/// Roles with the count of valid tokens holding each; then `WHERE r.name = ?` or `ORDER BY`.
const ROLE_ROWS: &str = "SELECT r.name, r.description, r.created_at, r.updated_at, \
    (SELECT COUNT(*) FROM token_roles tr JOIN api_tokens t ON t.id = tr.token_id \
     WHERE tr.role_name = r.name AND t.valid = 1) FROM roles r";

const ROLE_GRANTS_OF: &str = "SELECT role_name, permission FROM role_permissions \
    WHERE role_name = ? ORDER BY permission";
const ALL_ROLE_GRANTS: &str =
    "SELECT role_name, permission FROM role_permissions ORDER BY role_name, permission";
const COUNT_ROLES: &str = "SELECT COUNT(*) FROM roles";
const SET_ROLE: &str = "UPDATE roles SET description = ?, updated_at = ? WHERE name = ?";
const DELETE_ROLE: [&str; 3] = [
    "DELETE FROM token_roles WHERE role_name = ?",
    "DELETE FROM role_permissions WHERE role_name = ?",
    "DELETE FROM roles WHERE name = ?",
];
const CLEAR_ACCESS: [&str; 2] = [
    "DELETE FROM token_roles WHERE token_id = ?",
    "DELETE FROM token_permissions WHERE token_id = ?",
];
pub(super) const CLEAR_ALL: [&str; 4] = [
    "DELETE FROM token_roles",
    "DELETE FROM token_permissions",
    "DELETE FROM role_permissions",
    "DELETE FROM roles",
];

/// Removes `n` grants of one role: binds the role, then the grants.
fn remove_role_grants(n: usize) -> String {
    format!(
        "DELETE FROM role_permissions WHERE role_name = ? AND permission IN ({})",
        placeholders(n)
    )
}

/// Which of `n` names are roles: binds the names.
fn existing_roles(n: usize) -> String {
    format!("SELECT name FROM roles WHERE name IN ({})", placeholders(n))
}

/// `n` rows of `(token_id, role_name)`.
fn insert_token_roles(n: usize) -> String {
    let rows = tuples(n, 2);
    format!("INSERT INTO token_roles (token_id, role_name) VALUES {rows}")
}

/// `n` rows of `(token_id, permission)`.
fn insert_token_permissions(n: usize) -> String {
    let rows = tuples(n, 2);
    format!("INSERT INTO token_permissions (token_id, permission) VALUES {rows}")
}

/// `n` rows of `(role_name, permission)`, those a role has already skipped.
fn insert_role_grants(dialect: Dialect, n: usize) -> String {
    let (insert, rows) = (dialect.insert_ignore(), tuples(n, 2));
    format!("{insert} INTO role_permissions (role_name, permission) VALUES {rows}")
}

fn held_rows(rows: Vec<Row>) -> Result<Vec<(u64, Held, String)>, StoreError> {
    rows.iter()
        .map(|row| {
            let held = Held::from_code(row.i64(1)?)
                .ok_or_else(|| StoreError::CorruptRow("access row kind".into()))?;
            Ok((row.u64(0)?, held, row.string(2)?))
        })
        .collect()
}

/// One multi-row insert of `(token, name)` rows; nothing when there are no names.
async fn insert_held<T: Tx + ?Sized>(
    tx: &mut T,
    sql: String,
    token: u64,
    names: impl ExactSizeIterator<Item = String> + Send,
) -> Result<(), StoreError> {
    if names.len() == 0 {
        return Ok(());
    }
    let args = names.flat_map(|name| [id(token), name.into()]).collect();
    tx.execute(Statement::new(sql, args)).await?;
    Ok(())
}

fn name_of(name: &RoleName) -> Value {
    name.as_str().into()
}

/// Statements on roles, their grants and what tokens hold.
#[async_trait]
pub trait AccessSql {
    /// Serialises role creations (MySQL: the `access_lock` row; SQLite: nothing, its write
    /// transactions are serial).
    async fn lock_roles(&mut self) -> Result<(), StoreError>;
    async fn count_roles(&mut self) -> Result<u64, StoreError>;
    /// Roles (one, or every one by name) with how many valid tokens hold each.
    async fn role_rows(
        &mut self,
        name: Option<&RoleName>,
        lock: Lock,
    ) -> Result<Vec<RoleRow>, StoreError>;
    /// `(role, grant)` pairs of one role or of every role.
    async fn role_grants(
        &mut self,
        name: Option<&RoleName>,
    ) -> Result<Vec<(String, String)>, StoreError>;
    /// The role row (name, description, times); false when the name is taken.
    async fn insert_role(&mut self, role: &RoleRecord) -> Result<bool, StoreError>;
    async fn set_role(
        &mut self,
        name: &RoleName,
        description: Option<&RoleDescription>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Adds grants to a role (those it has are skipped).
    async fn add_role_grants(
        &mut self,
        name: &RoleName,
        grants: &[Grant],
    ) -> Result<(), StoreError>;
    async fn remove_role_grants(
        &mut self,
        name: &RoleName,
        grants: &[Grant],
    ) -> Result<(), StoreError>;
    /// The role, its grants, and every token's hold of it.
    async fn delete_role(&mut self, name: &RoleName) -> Result<(), StoreError>;
    /// Which of `names` are roles, locking them until the transaction ends.
    async fn existing_roles(&mut self, names: &[RoleName]) -> Result<Vec<String>, StoreError>;
    /// What these tokens hold (their roles' grants included): `(token, what, name)` rows.
    async fn access_rows(&mut self, ids: &[u64]) -> Result<Vec<(u64, Held, String)>, StoreError>;
    /// Roles and direct grants of every token, for `copy`.
    async fn all_access_rows(&mut self) -> Result<Vec<(u64, Held, String)>, StoreError>;
    /// Writes a token's roles and direct grants (it held none before).
    async fn insert_access(&mut self, id: u64, access: &TokenAccess) -> Result<(), StoreError>;
    /// Removes everything a token holds.
    async fn clear_access(&mut self, id: u64) -> Result<(), StoreError>;
}

#[async_trait]
impl<T: Tx + ?Sized> AccessSql for T {
    async fn lock_roles(&mut self) -> Result<(), StoreError> {
        if self.dialect() == Dialect::MySql {
            self.fetch(Statement::new(LOCK_ROLES, Vec::new())).await?;
        }
        Ok(())
    }

    async fn count_roles(&mut self) -> Result<u64, StoreError> {
        let row = first(self, Statement::new(COUNT_ROLES, Vec::new())).await?;
        row.map_or(Ok(0), |row| row.u64(0))
    }

    async fn role_rows(
        &mut self,
        name: Option<&RoleName>,
        lock: Lock,
    ) -> Result<Vec<RoleRow>, StoreError> {
        let lock = match lock {
            Lock::No => "",
            Lock::ForUpdate => self.dialect().for_update(),
        };
        let statement = match name {
            Some(name) => Statement::new(
                format!("{ROLE_ROWS} WHERE r.name = ?{lock}"),
                vec![name_of(name)],
            ),
            None => Statement::new(format!("{ROLE_ROWS} ORDER BY r.name{lock}"), Vec::new()),
        };
        let rows = self.fetch(statement).await?;
        rows.iter()
            .map(|row| {
                Ok(RoleRow {
                    name: row.string(0)?,
                    description: row.opt_string(1)?,
                    created_at: row.time(2)?,
                    updated_at: row.time(3)?,
                    tokens: row.u64(4)?,
                })
            })
            .collect()
    }

    async fn role_grants(
        &mut self,
        name: Option<&RoleName>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let statement = match name {
            Some(name) => Statement::new(ROLE_GRANTS_OF, vec![name_of(name)]),
            None => Statement::new(ALL_ROLE_GRANTS, Vec::new()),
        };
        let rows = self.fetch(statement).await?;
        rows.iter()
            .map(|row| Ok((row.string(0)?, row.string(1)?)))
            .collect()
    }

    async fn insert_role(&mut self, role: &RoleRecord) -> Result<bool, StoreError> {
        let args = vec![
            name_of(&role.name),
            role.description
                .as_ref()
                .map(RoleDescription::as_str)
                .into(),
            role.created_at.into(),
            role.updated_at.into(),
        ];
        Ok(self
            .insert(Statement::new(INSERT_ROLE, args))
            .await?
            .is_some())
    }

    async fn set_role(
        &mut self,
        name: &RoleName,
        description: Option<&RoleDescription>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let args = vec![
            description.map(RoleDescription::as_str).into(),
            at.into(),
            name_of(name),
        ];
        self.execute(Statement::new(SET_ROLE, args)).await?;
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
        let sql = insert_role_grants(self.dialect(), grants.len());
        let args = grants
            .iter()
            .flat_map(|grant| [name_of(name), grant.to_string().into()])
            .collect();
        self.execute(Statement::new(sql, args)).await?;
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
        let args = std::iter::once(name_of(name))
            .chain(grants.iter().map(|grant| grant.to_string().into()))
            .collect();
        let sql = remove_role_grants(grants.len());
        self.execute(Statement::new(sql, args)).await?;
        Ok(())
    }

    async fn delete_role(&mut self, name: &RoleName) -> Result<(), StoreError> {
        for sql in DELETE_ROLE {
            self.execute(Statement::new(sql, vec![name_of(name)]))
                .await?;
        }
        Ok(())
    }

    async fn existing_roles(&mut self, names: &[RoleName]) -> Result<Vec<String>, StoreError> {
        let lock = self.dialect().pick(SHARE_LOCK);
        let sql = format!("{}{lock}", existing_roles(names.len()));
        let args = names.iter().map(name_of).collect();
        let rows = self.fetch(Statement::new(sql, args)).await?;
        rows.iter().map(|row| row.string(0)).collect()
    }

    async fn access_rows(&mut self, ids: &[u64]) -> Result<Vec<(u64, Held, String)>, StoreError> {
        let args = (0..3)
            .flat_map(|_| ids.iter().map(|&token| id(token)))
            .collect();
        let rows = self
            .fetch(Statement::new(access_rows(ids.len()), args))
            .await?;
        held_rows(rows)
    }

    async fn all_access_rows(&mut self) -> Result<Vec<(u64, Held, String)>, StoreError> {
        let rows = self
            .fetch(Statement::new(ALL_ACCESS_ROWS, Vec::new()))
            .await?;
        held_rows(rows)
    }

    async fn insert_access(&mut self, token: u64, access: &TokenAccess) -> Result<(), StoreError> {
        let roles: Vec<String> = access.roles.iter().map(|r| r.as_str().to_owned()).collect();
        let sql = insert_token_roles(roles.len());
        insert_held(self, sql, token, roles.into_iter()).await?;
        let grants: Vec<String> = access.permissions.iter().map(Grant::to_string).collect();
        let sql = insert_token_permissions(grants.len());
        insert_held(self, sql, token, grants.into_iter()).await
    }

    async fn clear_access(&mut self, token: u64) -> Result<(), StoreError> {
        for sql in CLEAR_ACCESS {
            self.execute(Statement::new(sql, vec![id(token)])).await?;
        }
        Ok(())
    }
}
