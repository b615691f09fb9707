//! A token's whole record in at most two statements (a cache miss): its row with two flags —
//! whether it holds roles or permissions, whether it or its owner has limits or credits — and,
//! only when a flag is set, everything it holds in one more statement. A key that holds
//! nothing (most) costs one round trip.

use async_trait::async_trait;

use super::quota::{credit_from, limit_from, CreditAt, LimitAt};
use super::tokens::token_from;
use super::{first, id, Row, Statement};
use crate::domain::Digest;
use crate::store::backend::{CreditRow, Held, LimitRow, Tx};
use crate::store::{StoreError, TokenRecord};

/// `select_tokens!`'s columns, then the two flags (columns 26 and 27). A token in a grace
/// rotation holds its replacement's limits and credits (one budget per lineage).
macro_rules! select_record {
    ($($rest:literal),*) => {
        concat!(
            "SELECT ", $crate::store::sql::tokens::token_columns!(), ", ",
            "(EXISTS (SELECT 1 FROM token_roles r WHERE r.token_id = t.id) ",
            "OR EXISTS (SELECT 1 FROM token_permissions p WHERE p.token_id = t.id)), ",
            "(EXISTS (SELECT 1 FROM quota_limits l WHERE (l.scope = 't' ",
            "AND l.subject = COALESCE(t.replaced_by, t.id)) ",
            "OR (l.scope = 'u' AND l.subject = t.user_id)) ",
            "OR EXISTS (SELECT 1 FROM quota_credits c WHERE (c.scope = 't' ",
            "AND c.subject = COALESCE(t.replaced_by, t.id)) ",
            "OR (c.scope = 'u' AND c.subject = t.user_id))) ",
            "FROM api_tokens t LEFT JOIN owner_states o ON o.user_id = t.user_id ", $($rest),*
        )
    };
}

/// Where a limit's and a credit row's columns are in a `HOLDINGS` row.
const LIMIT_AT: LimitAt = [3, 1, 4, 5, 6, 7];
const CREDIT_AT: CreditAt = [3, 1, 5, 4, 6, 7, 8, 9, 10];

const BY_DIGEST: &str = select_record!("WHERE t.api_token = ?");
const BY_ID: &str = select_record!("WHERE t.id = ?");

/// Everything one token holds and every quota row of it and its owner, as rows of
/// `(kind, subject, held, scope, name, a, b, c, d, e)`: kind 0 an access row (`Held` code
/// in `held`), 1 a limit (`a..c`: max uses, duration, auto apply), 2 credits (`name`: the
/// refill interval; `a..f`: remaining, refill amount, refill day, refilled at, generation,
/// alerted).
/// Binds the token id three times, then (token, owner) twice.
const HOLDINGS: &str = "\
    SELECT 0, token_id, 0, NULL, role_name, NULL, NULL, NULL, NULL, NULL, NULL \
    FROM token_roles WHERE token_id = ? \
    UNION ALL SELECT 0, token_id, 1, NULL, permission, NULL, NULL, NULL, NULL, NULL, NULL \
    FROM token_permissions WHERE token_id = ? \
    UNION ALL SELECT 0, tr.token_id, 2, NULL, rp.permission, NULL, NULL, NULL, NULL, NULL, NULL \
    FROM token_roles tr JOIN role_permissions rp ON rp.role_name = tr.role_name \
    WHERE tr.token_id = ? \
    UNION ALL SELECT 1, subject, NULL, scope, name, max_uses, duration_ms, auto_apply, NULL, NULL, \
    NULL \
    FROM quota_limits WHERE (scope = 't' AND subject = ?) OR (scope = 'u' AND subject = ?) \
    UNION ALL SELECT 2, subject, NULL, scope, refill_interval, remaining, refill_amount, \
    refill_day, refilled_at_ms, generation, alerted \
    FROM quota_credits WHERE (scope = 't' AND subject = ?) OR (scope = 'u' AND subject = ?)";

/// What the flags of a record say it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Holds {
    /// Roles or permissions of its own.
    pub access: bool,
    /// Limits or credits, of its own or its owner's.
    pub quota: bool,
}

/// What a token holds, as the statements of each family would read it.
#[derive(Debug, Default)]
pub struct Holdings {
    pub access: Vec<(u64, Held, String)>,
    pub limits: Vec<LimitRow>,
    pub credits: Vec<CreditRow>,
}

fn record_from(row: &Row) -> Result<(TokenRecord, Holds), StoreError> {
    let holds = Holds {
        access: row.bool(26)?,
        quota: row.bool(27)?,
    };
    Ok((token_from(row, 0)?, holds))
}

fn add(holdings: &mut Holdings, row: &Row) -> Result<(), StoreError> {
    let corrupt = || StoreError::CorruptRow("holdings row kind".into());
    match row.i64(0)? {
        0 => {
            let held = Held::from_code(row.i64(2)?).ok_or_else(corrupt)?;
            holdings.access.push((row.u64(1)?, held, row.string(4)?));
        }
        1 => holdings.limits.push(limit_from(row, LIMIT_AT)?),
        2 => holdings.credits.push(credit_from(row, CREDIT_AT)?),
        _ => return Err(corrupt()),
    }
    Ok(())
}

/// A record with its flags, and what it holds.
#[async_trait]
pub trait RecordSql {
    /// The token with this digest, with what its flags say it holds (one statement).
    async fn record_by_digest(
        &mut self,
        digest: &Digest,
    ) -> Result<Option<(TokenRecord, Holds)>, StoreError>;
    async fn record_by_id(&mut self, id: u64) -> Result<Option<(TokenRecord, Holds)>, StoreError>;
    /// What token `token` holds, the quota rows of `quota` (the token, or its replacement
    /// during a grace rotation) and of owner `owner` (one statement).
    async fn holdings(
        &mut self,
        token: u64,
        quota: u64,
        owner: u64,
    ) -> Result<Holdings, StoreError>;
}

#[async_trait]
impl<T: Tx + ?Sized> RecordSql for T {
    async fn record_by_digest(
        &mut self,
        digest: &Digest,
    ) -> Result<Option<(TokenRecord, Holds)>, StoreError> {
        let row = first(
            self,
            Statement::new(BY_DIGEST, vec![digest.as_str().into()]),
        )
        .await?;
        row.as_ref().map(record_from).transpose()
    }

    async fn record_by_id(
        &mut self,
        token: u64,
    ) -> Result<Option<(TokenRecord, Holds)>, StoreError> {
        let row = first(self, Statement::new(BY_ID, vec![id(token)])).await?;
        row.as_ref().map(record_from).transpose()
    }

    async fn holdings(
        &mut self,
        token: u64,
        quota: u64,
        owner: u64,
    ) -> Result<Holdings, StoreError> {
        let (t, q, u) = (id(token), id(quota), id(owner));
        let args = vec![t.clone(), t.clone(), t, q.clone(), u.clone(), q, u];
        let mut holdings = Holdings::default();
        for row in self.fetch(Statement::new(HOLDINGS, args)).await? {
            add(&mut holdings, &row)?;
        }
        Ok(holdings)
    }
}
