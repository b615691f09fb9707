//! Quota state in Redis (SPEC B6): the same rules as `local.rs`, each decision one script,
//! so N instances enforce every limit and spend every credit as one instance would.
//!
//! Every key of one owner carries its hash tag, `{q<user id>}`, so a token's and its owner's
//! limits and credits sit in one Cluster slot and one script decides them all:
//! - `<prefix>q:{q<user>}:l:<t|u><id>:<window>:<name>`: a window's count (expires with it);
//! - `<prefix>q:{q<user>}:c:<t|u><id>`: leased credits, a hash of `g` (generation), `b`
//!   (balance), `a` (refilled at, ms) and `x` (exhausted until, ms);
//! - `<prefix>q:{q<user>}:o:<operation id>`: what one charge, lease, take or drain did, kept
//!   for `RECORD_MS`, so that the operation applies once however often it is sent: a try
//!   whose answer timed out is sent again with the same id (`Redis::run_once`), and a charge
//!   that got no answer at all is voided (undone if it ran) in the background.

use std::sync::Arc;

use super::local::Balance;
use super::scripts::{ADD_LEASE, DRAIN, RECORD_MS, REFRESH, SETTLE_WITHIN, SPEND, TAKE, VOID};
use super::spend::{Answer, Spend, EXHAUSTED_RECHECK_MS};
use crate::domain::quota::{LimitName, Subject};
use crate::domain::UserId;
use crate::shared::{Redis, Unanswered};
use crate::store::{Lease, StoreError};

/// A counter outlives its window by this much (clock differences between instances).
const COUNTER_SLACK_MS: i64 = 5_000;

/// Quota state in Redis. Without an answer within `redis.timeout` a charge fails closed; a
/// charge whose answer was lost is voided in the background, so that it never costs a credit
/// or a window's use without serving.
#[derive(Clone)]
pub struct SharedHolder {
    redis: Arc<Redis>,
}

fn unavailable<T>(_: crate::shared::Unavailable) -> Result<T, StoreError> {
    Err(StoreError::SharedState)
}

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A script's keys and arguments, owned: what a settlement in the background runs again.
struct Call {
    keys: Vec<String>,
    args: Vec<i64>,
}

impl Call {
    fn keys(&self) -> Vec<&str> {
        self.keys.iter().map(String::as_str).collect()
    }
}

impl SharedHolder {
    pub fn new(redis: Arc<Redis>) -> Self {
        Self { redis }
    }

    fn subject_code(subject: Subject) -> String {
        format!("{}{}", subject.scope().code(), subject.id())
    }

    fn counter_key(
        &self,
        owner: UserId,
        subject: Subject,
        window: u64,
        name: &LimitName,
    ) -> String {
        let code = Self::subject_code(subject);
        self.redis
            .key(format_args!("q:{{q{owner}}}:l:{code}:{window}:{name}"))
    }

    fn pool_key(&self, owner: UserId, subject: Subject) -> String {
        let code = Self::subject_code(subject);
        self.redis.key(format_args!("q:{{q{owner}}}:c:{code}"))
    }

    /// A fresh operation's record, in the owner's slot (a retry names the same one).
    fn record_key(&self, owner: UserId) -> String {
        let id = rand::random::<u64>();
        self.redis.key(format_args!("q:{{q{owner}}}:o:{id:016x}"))
    }

    /// Runs `script` once for `call` (retried within the timeout); when no answer came, runs
    /// `settle` (the same script, or the charge's void) in the background until Redis answers.
    async fn once<T: redis::FromRedisValue>(
        &self,
        during: &'static str,
        script: &'static redis::Script,
        call: Call,
        settle: &'static redis::Script,
    ) -> Result<T, StoreError> {
        let answer = self
            .redis
            .run_once(during, script, &call.keys(), &call.args)
            .await;
        if matches!(answer, Err(Unanswered::Lost)) {
            self.settle_later(during, settle, call);
        }
        answer.map_err(|_| StoreError::SharedState)
    }

    fn settle_later(&self, during: &'static str, script: &'static redis::Script, call: Call) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let redis = self.redis.clone();
        let voiding = std::ptr::eq(script, &*VOID);
        runtime.spawn(async move {
            let settled = redis
                .settle::<redis::Value>(during, script, &call.keys(), &call.args, SETTLE_WITHIN)
                .await;
            match settled {
                Ok(_) if voiding => redis.health().metrics().voided.increment(1),
                Ok(_) => {}
                Err(_) => tracing::error!(
                    during,
                    "Redis did not answer within 25 s: an operation whose answer was lost \
                     stays as Redis left it (a charge may have spent without serving, leased \
                     credits may be lost; none is ever granted twice)"
                ),
            }
        });
    }

    pub async fn spend(&self, spend: &Spend<'_>) -> Result<Answer, StoreError> {
        let mut keys = Vec::with_capacity(spend.limits.len() + spend.credits.len() + 1);
        let mut args = Vec::with_capacity(3 + spend.limits.len() * 3 + spend.credits.len() * 2);
        args.extend([spend.now_ms, spend.limits.len() as i64, RECORD_MS]);
        for step in &spend.limits {
            keys.push(self.counter_key(spend.owner, step.subject, step.window.index, step.name()));
            let keep = step.window.ends_ms - spend.now_ms + COUNTER_SLACK_MS;
            args.extend([int(step.limit()), int(step.cost), keep.max(1)]);
        }
        for step in &spend.credits {
            keys.push(self.pool_key(spend.owner, step.subject));
            args.extend([int(step.cost), step.boundary_ms]);
        }
        keys.push(self.record_key(spend.owner));
        let charged = keys.len() - 1;
        let answer: Vec<i64> = self
            .once("quota", &SPEND, Call { keys, args }, &VOID)
            .await?;
        let index = |at: i64| usize::try_from(at - 1).unwrap_or(0);
        let value = |v: i64| u64::try_from(v).unwrap_or(0);
        match answer.as_slice() {
            [0, _, rest @ ..] if rest.len() == charged => {
                let (counts, balances) = rest.split_at(spend.limits.len());
                Ok(Answer::Done {
                    counts: counts.iter().copied().map(value).collect(),
                    balances: balances.iter().copied().map(value).collect(),
                    ahead: None,
                })
            }
            [1, at, count] => Ok(Answer::Limited {
                index: index(*at),
                count: value(*count),
            }),
            [2, at, _] => Ok(Answer::NeedLease { index: index(*at) }),
            [3, at, _] => Ok(Answer::Exhausted { index: index(*at) }),
            _ => Err(StoreError::SharedState),
        }
    }

    /// Puts credits leased from the store into the shared balance. Without an answer the
    /// lease still lands, in the background (it left the store: never given twice).
    pub async fn add_lease(
        &self,
        owner: UserId,
        subject: Subject,
        lease: &Lease,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let exhausted_until = match lease.granted {
            0 => now_ms.saturating_add(EXHAUSTED_RECHECK_MS),
            _ => 0,
        };
        let call = Call {
            keys: vec![self.pool_key(owner, subject), self.record_key(owner)],
            args: vec![
                int(lease.generation),
                lease.refilled_at.timestamp_millis(),
                int(lease.granted),
                exhausted_until,
                RECORD_MS,
            ],
        };
        self.once::<i64>("quota lease", &ADD_LEASE, call, &ADD_LEASE)
            .await
            .map(drop)
    }

    /// Takes up to `amount` leased credits of `generation` out of the shared balance.
    pub async fn take(
        &self,
        owner: UserId,
        subject: Subject,
        generation: u64,
        amount: u64,
    ) -> Result<u64, StoreError> {
        let call = Call {
            keys: vec![self.pool_key(owner, subject), self.record_key(owner)],
            args: vec![int(generation), int(amount), RECORD_MS],
        };
        let taken: i64 = self.once("quota take", &TAKE, call, &TAKE).await?;
        Ok(u64::try_from(taken).unwrap_or(0))
    }

    pub async fn refresh(
        &self,
        owner: UserId,
        subject: Subject,
        generation: u64,
    ) -> Result<(), StoreError> {
        let key = self.pool_key(owner, subject);
        let args = [int(generation)];
        match self
            .redis
            .run::<i64>("quota refresh", &REFRESH, &[&key], &args)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => unavailable(err),
        }
    }

    pub async fn balance(
        &self,
        owner: UserId,
        subject: Subject,
    ) -> Result<Option<Balance>, StoreError> {
        let key = self.pool_key(owner, subject);
        let read = redis::cmd("HMGET")
            .arg(&key)
            .arg("g")
            .arg("b")
            .arg("a")
            .clone();
        let held: Vec<Option<i64>> = match self.redis.query("quota balance", &read).await {
            Ok(held) => held,
            Err(err) => return unavailable(err),
        };
        Ok(balance_of(subject, &held))
    }

    /// Empties a pool, answering what it held. Without an answer, what it held is lost (the
    /// caller deposits nothing): never given twice.
    pub async fn drain(
        &self,
        owner: UserId,
        subject: Subject,
    ) -> Result<Option<Balance>, StoreError> {
        let keys = [self.pool_key(owner, subject), self.record_key(owner)];
        let keys = [keys[0].as_str(), keys[1].as_str()];
        let held = self
            .redis
            .run_once("quota drain", &DRAIN, &keys, &[RECORD_MS]);
        let held: Vec<i64> = held.await.map_err(|_| StoreError::SharedState)?;
        let held: Vec<Option<i64>> = held.into_iter().map(Some).collect();
        Ok(balance_of(subject, &held))
    }

    pub async fn count(
        &self,
        owner: UserId,
        subject: Subject,
        name: &LimitName,
        window: u64,
    ) -> Result<u64, StoreError> {
        let key = self.counter_key(owner, subject, window, name);
        let read = redis::cmd("GET").arg(&key).clone();
        match self.redis.query::<Option<u64>>("quota count", &read).await {
            Ok(count) => Ok(count.unwrap_or(0)),
            Err(err) => unavailable(err),
        }
    }
}

fn balance_of(subject: Subject, held: &[Option<i64>]) -> Option<Balance> {
    match held {
        [Some(generation), Some(balance), Some(refilled_at), ..] => Some(Balance {
            subject,
            generation: u64::try_from(*generation).unwrap_or(0),
            refilled_at_ms: *refilled_at,
            balance: u64::try_from(*balance).unwrap_or(0),
            exhausted_until_ms: 0,
            leased: 0,
            ahead_until_ms: 0,
        }),
        _ => None,
    }
}
