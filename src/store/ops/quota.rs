//! Customer limits and credits (SPEC B5): replace a subject's limits, change its credits,
//! lease credits out and take back what was not spent — each change with its audit event, in
//! the transaction that makes it — and the read that attaches a token's and its owner's
//! quotas to its record.

use crate::store::sql::families::*;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{done, work, StoreOps};
use crate::domain::actor::job;
use crate::domain::quota::{
    Changed, CreditChange, Credits, Interval, LimitName, Quota, RateLimit, RateLimits, Refill,
    Scope, Subject,
};
use crate::domain::webhook::{CreditAlerts, EventType, OutboxEvent};
use crate::domain::{Actor, Digest};
use crate::store::backend::{Backend, CreditRow, LimitRow, Lock, Tx, TxEnd};
use crate::store::{Audit, AuditKind, Lease, QuotaChange, QuotaStore, StoreError};

#[async_trait]
impl<B: Backend> QuotaStore for StoreOps<B> {
    async fn set_limits(
        &self,
        subject: Subject,
        limits: &RateLimits,
        audit: &Audit,
    ) -> Result<QuotaChange<()>, StoreError> {
        let (limits, audit) = (Arc::new(limits.clone()), Arc::new(audit.clone()));
        self.backend
            .write(work(move |tx| {
                let (limits, audit) = (limits.clone(), audit.clone());
                Box::pin(async move {
                    let Some(tokens) = lock_subject(tx, subject, audit.at).await? else {
                        return Ok(TxEnd::Rollback(QuotaChange::NotFound));
                    };
                    let rows = limit_rows(subject, &limits);
                    tx.replace_limits(subject.scope().code(), subject.id(), &rows)
                        .await?;
                    let mut detail = subject_detail(subject);
                    detail["ratelimits"] = json!(limits
                        .iter()
                        .map(|limit| json!({
                            "name": limit.name.as_str(),
                            "limit": limit.limit,
                            "duration": limit.duration_ms,
                            "autoApply": limit.auto_apply,
                        }))
                        .collect::<Vec<_>>());
                    write_event(tx, subject, AuditKind::RateLimitsUpdated, &audit, detail).await?;
                    Ok(TxEnd::Commit(QuotaChange::Changed { value: (), tokens }))
                })
            }))
            .await
    }

    async fn change_credits(
        &self,
        subject: Subject,
        change: &CreditChange,
        audit: &Audit,
    ) -> Result<QuotaChange<Changed>, StoreError> {
        let (change, audit) = (*change, Arc::new(audit.clone()));
        let alerts = self.credit_alerts;
        self.backend
            .write(work(move |tx| {
                let audit = audit.clone();
                Box::pin(async move {
                    let Some(tokens) = lock_subject(tx, subject, audit.at).await? else {
                        return Ok(TxEnd::Rollback(QuotaChange::NotFound));
                    };
                    let before = credits_of_subject(tx, subject, Lock::ForUpdate).await?;
                    let mut changed = change.apply(before, audit.at);
                    // Sent in this transaction, with the row that records them.
                    let crossed = match before {
                        None => {
                            alerts.observe(&mut changed.credits);
                            None
                        }
                        Some(_) => Some(changed.credits),
                    };
                    if let Some(mut credits) = crossed {
                        credit_alerts(tx, alerts, subject, &mut credits, &audit.actor, audit.at)
                            .await?;
                        changed.credits.alerted = credits.alerted;
                    }
                    let row = credit_row(subject, &changed.credits);
                    tx.replace_credits(subject.scope().code(), subject.id(), Some(&row))
                        .await?;
                    let mut detail = subject_detail(subject);
                    detail["change"] = change_detail(&change);
                    detail["remaining"] = json!(changed.credits.remaining);
                    write_event(tx, subject, AuditKind::CreditsUpdated, &audit, detail).await?;
                    Ok(TxEnd::Commit(QuotaChange::Changed {
                        value: changed,
                        tokens,
                    }))
                })
            }))
            .await
    }

    async fn quota(&self, subject: Subject) -> Result<Option<Quota>, StoreError> {
        self.backend
            .read(work(move |tx| {
                Box::pin(async move {
                    if let Subject::Token(id) = subject {
                        if tx.token_by_id(id, Lock::No).await?.is_none() {
                            return done(None);
                        }
                    }
                    let (token, owner) = ids(subject);
                    let quotas = read_quotas(tx, token, owner, Lock::No).await?;
                    done(Some(match subject {
                        Subject::Token(_) => quotas.token,
                        Subject::Owner(_) => quotas.owner,
                    }))
                })
            }))
            .await
    }

    async fn token_credits(
        &self,
        ids: &[u64],
    ) -> Result<std::collections::HashMap<u64, Credits>, StoreError> {
        let ids = ids.to_vec();
        self.backend
            .read(work(move |tx| {
                let ids = ids.clone();
                Box::pin(async move {
                    let rows = tx.token_credit_rows(&ids).await?;
                    let credits = rows
                        .iter()
                        .map(|row| Ok((row.subject, credits_of(row)?)))
                        .collect::<Result<_, StoreError>>()?;
                    done(credits)
                })
            }))
            .await
    }

    async fn lease(
        &self,
        subject: Subject,
        at_least: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<Lease>, StoreError> {
        let alerts = self.credit_alerts;
        self.backend
            .write(work(move |tx| {
                Box::pin(async move {
                    let found = credits_of_subject(tx, subject, Lock::ForUpdate).await?;
                    let Some(credits) = found else {
                        return Ok(TxEnd::Rollback(None));
                    };
                    let mut credits = credits.at(now);
                    let granted = credits.lease(at_least);
                    let system = Actor::system(job::CREDITS);
                    credit_alerts(tx, alerts, subject, &mut credits, &system, now).await?;
                    let row = credit_row(subject, &credits);
                    tx.replace_credits(subject.scope().code(), subject.id(), Some(&row))
                        .await?;
                    Ok(TxEnd::Commit(Some(Lease {
                        granted,
                        generation: credits.generation,
                        refilled_at: credits.refilled_at,
                        remaining: credits.remaining,
                    })))
                })
            }))
            .await
    }

    async fn deposit(
        &self,
        subject: Subject,
        generation: u64,
        amount: u64,
    ) -> Result<bool, StoreError> {
        self.backend
            .write(work(move |tx| {
                Box::pin(async move {
                    let found = credits_of_subject(tx, subject, Lock::ForUpdate).await?;
                    let Some(mut credits) = found.filter(|c| c.generation == generation) else {
                        return Ok(TxEnd::Rollback(false));
                    };
                    credits.remaining = credits
                        .remaining
                        .saturating_add(amount)
                        .min(crate::domain::quota::MAX_CREDITS);
                    let row = credit_row(subject, &credits);
                    tx.replace_credits(subject.scope().code(), subject.id(), Some(&row))
                        .await?;
                    Ok(TxEnd::Commit(true))
                })
            }))
            .await
    }
}

/// Writes the threshold events a change of a pool's stored balance crosses (SPEC B12), in the
/// change's transaction and under the pool's row lock; `credits` is then written with what was
/// sent (`alerted`). The dedupe key names the pool, the instant and the balance.
async fn credit_alerts(
    tx: &mut dyn Tx,
    alerts: CreditAlerts,
    subject: Subject,
    credits: &mut Credits,
    actor: &Actor,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let refill = credits.refill.map(|r| r.amount());
    let after = credits.remaining;
    for kind in alerts.check(credits) {
        let mut detail = subject_detail(subject);
        detail["remaining"] = json!(after);
        if kind == EventType::CreditsLow {
            detail["threshold"] = json!(alerts.low_threshold(refill));
        }
        if let Some(amount) = refill {
            detail["refillAmount"] = json!(amount);
        }
        let (token_id, user_id) = match subject {
            Subject::Token(token) => (Some(token), None),
            Subject::Owner(user) => (None, Some(user)),
        };
        let event = OutboxEvent {
            kind,
            dedupe_key: Some(format!(
                "{}:{}:{}:{}:{after}",
                kind.as_str(),
                subject.scope().code(),
                subject.id(),
                at.timestamp_millis()
            )),
            token_id,
            user_id,
            actor: actor.clone(),
            detail,
            at,
        };
        tx.insert_outbox(&event).await?;
    }
    Ok(())
}

/// A token's own quotas and its owner's.
pub(super) struct Quotas {
    pub token: Quota,
    pub owner: Quota,
}

/// The quotas of token `token` and owner `owner` (0: none of that scope).
async fn read_quotas(
    tx: &mut dyn Tx,
    token: u64,
    owner: u64,
    lock: Lock,
) -> Result<Quotas, StoreError> {
    let limits = tx.limit_rows(token, owner).await?;
    let credits = tx.credit_rows(token, owner, lock).await?;
    quotas_from(&limits, &credits)
}

/// A token's quotas and its owner's, from their rows (each checked).
pub(super) fn quotas_from(
    limit_rows: &[LimitRow],
    credit_rows: &[CreditRow],
) -> Result<Quotas, StoreError> {
    let mut limits = (Vec::new(), Vec::new());
    for row in limit_rows {
        let limit = limit_of(row)?;
        match scope_of(&row.scope)? {
            Scope::Token => limits.0.push(limit),
            Scope::Owner => limits.1.push(limit),
        }
    }
    let mut credits = (None, None);
    for row in credit_rows {
        let found = Some(credits_of(row)?);
        match scope_of(&row.scope)? {
            Scope::Token => credits.0 = found,
            Scope::Owner => credits.1 = found,
        }
    }
    let set = |limits| RateLimits::new(limits).map_err(|_| corrupt("quota_limits"));
    Ok(Quotas {
        token: Quota {
            limits: set(limits.0)?,
            credits: credits.0,
        },
        owner: Quota {
            limits: set(limits.1)?,
            credits: credits.1,
        },
    })
}

/// `(token id, owner id)` selecting only `subject`'s rows.
fn ids(subject: Subject) -> (u64, u64) {
    match subject {
        Subject::Token(id) => (id, 0),
        Subject::Owner(user) => (0, user.get()),
    }
}

async fn credits_of_subject(
    tx: &mut dyn Tx,
    subject: Subject,
    lock: Lock,
) -> Result<Option<Credits>, StoreError> {
    let (token, owner) = ids(subject);
    let rows = tx.credit_rows(token, owner, lock).await?;
    rows.first().map(credits_of).transpose()
}

/// Locks what a change of `subject` serialises on (the token's row, or the owner's lock) and
/// answers the digests of the valid tokens it concerns; `None` for a missing token.
async fn lock_subject(
    tx: &mut dyn Tx,
    subject: Subject,
    now: DateTime<Utc>,
) -> Result<Option<Vec<Digest>>, StoreError> {
    match subject {
        Subject::Token(id) => {
            let found = tx.token_by_id(id, Lock::ForUpdate).await?;
            Ok(found.map(|record| vec![record.digest]))
        }
        Subject::Owner(user) => {
            tx.lock_owner(user).await?;
            let tokens = tx.list_valid(user, now).await?;
            Ok(Some(
                tokens.into_iter().map(|record| record.digest).collect(),
            ))
        }
    }
}

async fn write_event(
    tx: &mut dyn Tx,
    subject: Subject,
    kind: AuditKind,
    audit: &Audit,
    detail: Value,
) -> Result<(), StoreError> {
    match subject {
        Subject::Token(id) => tx.write_event(Some(id), kind, audit, detail).await,
        Subject::Owner(user) => tx.write_owner_event(user, kind, audit, detail).await,
    }
}

fn subject_detail(subject: Subject) -> Value {
    match subject {
        Subject::Token(_) => json!({ "scope": "token" }),
        Subject::Owner(user) => json!({ "scope": "owner", "userId": user }),
    }
}

fn change_detail(change: &CreditChange) -> Value {
    use crate::domain::quota::Remaining;
    let mut detail = json!({});
    match change.remaining {
        Some(Remaining::Set(n)) => detail["remaining"] = json!(n),
        Some(Remaining::Increment(n)) => detail["increment"] = json!(n),
        Some(Remaining::Decrement(n)) => detail["decrement"] = json!(n),
        None => {}
    }
    if let Some(refill) = change.refill {
        detail["refill"] = refill.map_or(Value::Null, refill_detail);
    }
    detail
}

/// A refill as the API shows it.
pub(crate) fn refill_detail(refill: Refill) -> Value {
    let mut detail = json!({
        "interval": refill.interval().as_str(),
        "amount": refill.amount(),
    });
    if let Some(day) = refill.day() {
        detail["refillDay"] = json!(day);
    }
    detail
}

fn corrupt(what: &str) -> StoreError {
    StoreError::CorruptRow(what.to_owned())
}

fn scope_of(code: &str) -> Result<Scope, StoreError> {
    Scope::from_code(code).ok_or_else(|| corrupt("quota scope"))
}

fn limit_of(row: &LimitRow) -> Result<RateLimit, StoreError> {
    let name = LimitName::parse(&row.name).map_err(|_| corrupt("quota_limits.name"))?;
    RateLimit::new(name, row.max_uses, row.duration_ms, row.auto_apply)
        .map_err(|_| corrupt("quota_limits"))
}

fn credits_of(row: &CreditRow) -> Result<Credits, StoreError> {
    let refill = match (&row.refill_interval, row.refill_amount) {
        (None, _) => None,
        (Some(interval), Some(amount)) => {
            let interval = Interval::parse(interval).ok_or_else(|| corrupt("refill_interval"))?;
            Some(Refill::new(interval, amount, row.refill_day).map_err(|_| corrupt("refill"))?)
        }
        (Some(_), None) => return Err(corrupt("refill_amount")),
    };
    let refilled_at = DateTime::from_timestamp_millis(row.refilled_at_ms)
        .ok_or_else(|| corrupt("refilled_at_ms"))?;
    let mut credits =
        Credits::new(row.remaining, refill, refilled_at).map_err(|_| corrupt("remaining"))?;
    credits.generation = row.generation;
    credits.alerted = row.alerted;
    Ok(credits)
}

fn limit_rows(subject: Subject, limits: &RateLimits) -> Vec<LimitRow> {
    limits
        .iter()
        .map(|limit| LimitRow {
            scope: subject.scope().code().to_owned(),
            subject: subject.id(),
            name: limit.name.as_str().to_owned(),
            max_uses: limit.limit,
            duration_ms: limit.duration_ms,
            auto_apply: limit.auto_apply,
        })
        .collect()
}

pub(super) fn credit_row(subject: Subject, credits: &Credits) -> CreditRow {
    CreditRow {
        scope: subject.scope().code().to_owned(),
        subject: subject.id(),
        remaining: credits.remaining,
        refill_interval: credits.refill.map(|r| r.interval().as_str().to_owned()),
        refill_amount: credits.refill.map(|r| r.amount()),
        refill_day: credits.refill.and_then(|r| r.day()).map(u64::from),
        refilled_at_ms: credits.refilled_at.timestamp_millis(),
        generation: credits.generation,
        alerted: credits.alerted,
    }
}

/// Writes a new token's own quota (creation).
pub(super) async fn insert_quota(
    tx: &mut dyn Tx,
    token_id: u64,
    quota: &Quota,
    alerts: CreditAlerts,
) -> Result<(), StoreError> {
    let subject = Subject::Token(token_id);
    if !quota.limits.is_empty() {
        let rows = limit_rows(subject, &quota.limits);
        tx.replace_limits(subject.scope().code(), token_id, &rows)
            .await?;
    }
    if let Some(credits) = &quota.credits {
        let mut credits = *credits;
        alerts.observe(&mut credits);
        let row = credit_row(subject, &credits);
        tx.replace_credits(subject.scope().code(), token_id, Some(&row))
            .await?;
    }
    Ok(())
}
