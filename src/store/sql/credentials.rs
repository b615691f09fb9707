//! Statements on the stored admin credentials (SPEC B9), and the one mapping of their row.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::audit::{actor_from, actor_values};
use super::{first, id, Row, Statement};
use crate::domain::access::scope::ScopeList;
use crate::domain::credential::{CredentialRecord, NewCredential};
use crate::domain::Digest;
use crate::store::backend::{Lock, Tx};
use crate::store::StoreError;

macro_rules! select_credentials {
    ($rest:literal) => {
        concat!(
            "SELECT id, digest, name, scopes, created_at, created_by_type, created_by_id, \
             created_by_name, expires_at, last_used_at, last_used_ip, revoked_at \
             FROM admin_credentials ",
            $rest
        )
    };
}

const INSERT: &str = "INSERT INTO admin_credentials (digest, name, scopes, created_at, \
    created_by_type, created_by_id, created_by_name, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
const BY_ID: &str = select_credentials!("WHERE id = ?");
const BY_DIGEST: &str = select_credentials!("WHERE digest = ?");
const ALL: &str = select_credentials!("ORDER BY id");
const UPDATE: &str =
    "UPDATE admin_credentials SET name = ?, scopes = ?, expires_at = ? WHERE id = ?";
const REVOKE: &str =
    "UPDATE admin_credentials SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL";
/// Never moves the time back (two instances may flush out of order).
const TOUCH: &str = "UPDATE admin_credentials SET last_used_at = ?, last_used_ip = ? \
    WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)";
const INSERT_ROW: &str = "INSERT INTO admin_credentials (id, digest, name, scopes, created_at, \
    created_by_type, created_by_id, created_by_name, expires_at, last_used_at, last_used_ip, \
    revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// A row selected by `select_credentials!` as a record.
fn credential_from(row: &Row) -> Result<CredentialRecord, StoreError> {
    let corrupt = |what: &str| StoreError::CorruptRow(format!("admin_credentials.{what}"));
    let scopes: Vec<String> =
        serde_json::from_str(&row.string(3)?).map_err(|_| corrupt("scopes"))?;
    Ok(CredentialRecord {
        id: row.u64(0)?,
        digest: Digest::parse(&row.string(1)?).ok_or_else(|| corrupt("digest"))?,
        name: row.string(2)?,
        scopes: ScopeList::parse(&scopes).map_err(|_| corrupt("scopes"))?,
        created_at: row.time(4)?,
        created_by: actor_from(row, 5)?,
        expires_at: row.opt_time(8)?,
        last_used_at: row.opt_time(9)?,
        last_used_ip: row.opt_string(10)?,
        revoked_at: row.opt_time(11)?,
    })
}

fn scopes_text(scopes: &ScopeList) -> String {
    serde_json::Value::from(scopes.texts().to_vec()).to_string()
}

/// Statements on the stored admin credentials.
#[async_trait]
pub trait CredentialSql {
    /// The new credential's id, `None` when its digest is taken.
    async fn insert_credential(&mut self, new: &NewCredential) -> Result<Option<u64>, StoreError>;
    async fn credential(
        &mut self,
        id: u64,
        lock: Lock,
    ) -> Result<Option<CredentialRecord>, StoreError>;
    async fn credential_by_digest(
        &mut self,
        digest: &Digest,
    ) -> Result<Option<CredentialRecord>, StoreError>;
    /// Every credential, revoked ones included, oldest first.
    async fn credentials(&mut self) -> Result<Vec<CredentialRecord>, StoreError>;
    /// Writes its name, scopes and expiry as the record holds them.
    async fn update_credential(&mut self, record: &CredentialRecord) -> Result<(), StoreError>;
    /// False when it was revoked already (or there is none).
    async fn revoke_credential(&mut self, id: u64, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Records a use, unless a later one is recorded already.
    async fn touch_credential(
        &mut self,
        id: u64,
        at: DateTime<Utc>,
        ip: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Inserts a credential as it is, id included (`iam-tokens copy`).
    async fn insert_credential_row(&mut self, record: &CredentialRecord) -> Result<(), StoreError>;
}

#[async_trait]
impl<T: Tx + ?Sized> CredentialSql for T {
    async fn insert_credential(&mut self, new: &NewCredential) -> Result<Option<u64>, StoreError> {
        let [by_type, by_id, by_name] = actor_values(&new.created_by);
        let args = vec![
            new.digest.as_str().into(),
            new.name.as_str().into(),
            scopes_text(&new.scopes).into(),
            new.created_at.into(),
            by_type,
            by_id,
            by_name,
            new.expires_at.into(),
        ];
        self.insert(Statement::new(INSERT, args)).await
    }

    async fn credential(
        &mut self,
        credential: u64,
        lock: Lock,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        let sql = match lock {
            Lock::No => BY_ID.to_owned(),
            Lock::ForUpdate => format!("{BY_ID}{}", self.dialect().for_update()),
        };
        first(self, Statement::new(sql, vec![id(credential)]))
            .await?
            .as_ref()
            .map(credential_from)
            .transpose()
    }

    async fn credential_by_digest(
        &mut self,
        digest: &Digest,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        first(
            self,
            Statement::new(BY_DIGEST, vec![digest.as_str().into()]),
        )
        .await?
        .as_ref()
        .map(credential_from)
        .transpose()
    }

    async fn credentials(&mut self) -> Result<Vec<CredentialRecord>, StoreError> {
        let rows = self.fetch(Statement::new(ALL, Vec::new())).await?;
        rows.iter().map(credential_from).collect()
    }

    async fn update_credential(&mut self, record: &CredentialRecord) -> Result<(), StoreError> {
        let args = vec![
            record.name.as_str().into(),
            scopes_text(&record.scopes).into(),
            record.expires_at.into(),
            id(record.id),
        ];
        self.execute(Statement::new(UPDATE, args)).await?;
        Ok(())
    }

    async fn revoke_credential(
        &mut self,
        credential: u64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let args = vec![at.into(), id(credential)];
        Ok(self.execute(Statement::new(REVOKE, args)).await? > 0)
    }

    async fn touch_credential(
        &mut self,
        credential: u64,
        at: DateTime<Utc>,
        ip: Option<&str>,
    ) -> Result<(), StoreError> {
        let args = vec![at.into(), ip.into(), id(credential), at.into()];
        self.execute(Statement::new(TOUCH, args)).await?;
        Ok(())
    }

    async fn insert_credential_row(&mut self, r: &CredentialRecord) -> Result<(), StoreError> {
        let [by_type, by_id, by_name] = actor_values(&r.created_by);
        let args = vec![
            id(r.id),
            r.digest.as_str().into(),
            r.name.as_str().into(),
            scopes_text(&r.scopes).into(),
            r.created_at.into(),
            by_type,
            by_id,
            by_name,
            r.expires_at.into(),
            r.last_used_at.into(),
            r.last_used_ip.as_deref().into(),
            r.revoked_at.into(),
        ];
        self.execute(Statement::new(INSERT_ROW, args)).await?;
        Ok(())
    }
}
