//! How one Redis call is made: admitted by the breaker, sent on a connection not waiting on a
//! late answer, bounded in time, its outcome fed back; the at-most-once scripts tried twice
//! within the timeout (`run_once`) and settled in the background when their answer was lost
//! (`settle`).

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redis::{Cmd, FromRedisValue, Script};

use super::breaker::Admission;
use super::connection::{Connection, Redis};
use super::health::Failure;

/// A Redis call that did not answer: Redis is down, silent past the timeout, or not yet
/// connected. The caller goes on without it (or fails closed, where the spec says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Redis is unavailable")]
pub struct Unavailable;

/// What became of a [`Redis::run_once`] call that got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// Never sent (the breaker is open, no connection is free): nothing ran.
    NotSent,
    /// Sent, and no answer came in time, or the connection broke: it may have run.
    Lost,
    /// Redis answered with an error: it did not apply.
    Refused,
}

impl From<Unanswered> for Unavailable {
    fn from(_: Unanswered) -> Self {
        Unavailable
    }
}

impl Unanswered {
    fn of(failure: Failure) -> Self {
        match failure {
            Failure::Error => Self::Refused,
            Failure::Timeout | Failure::Refused => Self::Lost,
        }
    }
}

impl Redis {
    /// Admission by the breaker and a connection for a request-path call, else `Unavailable`
    /// (counted: skipped, and for the breaker a failure when every connection is stalled).
    fn admitted(&self, avoid: Option<usize>) -> Result<(Admission, usize), Unavailable> {
        let admission = self.health.admit();
        if admission == Admission::Refused || self.pool.get().is_none() {
            return Err(Unavailable);
        }
        match self.pick(avoid) {
            Some(slot) => Ok((admission, slot)),
            None => {
                self.health.stalled(admission);
                Err(Unavailable)
            }
        }
    }

    /// One try of a call on connection `slot`, within `within`. Feeds the breaker unless
    /// `admission` is `None` (settling in the background); a timeout sets the connection
    /// aside until it answers again.
    async fn attempt<T, F, Fut>(
        &self,
        during: &'static str,
        admission: Option<Admission>,
        slot: usize,
        within: Duration,
        send: F,
    ) -> Result<T, Failure>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let pool = self.pool.get().ok_or(Failure::Refused)?;
        let connection = pool[slot].connection.clone();
        self.health.metrics().calls.increment(1);
        let started = Instant::now();
        let answer = tokio::time::timeout(within, send(connection)).await;
        let failure = match answer {
            Ok(Ok(value)) => {
                let took = started.elapsed();
                self.health
                    .metrics()
                    .call_duration
                    .record(took.as_secs_f64());
                if let Some(admission) = admission {
                    self.health.succeeded(admission);
                }
                return Ok(value);
            }
            Err(_) => (Failure::Timeout, "timed out".to_owned()),
            Ok(Err(err)) => (classify(&err), err.to_string()),
        };
        let (failure, error) = failure;
        if failure == Failure::Timeout {
            self.stall(slot);
        }
        if failure == Failure::Error {
            tracing::error!(during, error = %error, "Redis refused a call");
        }
        match admission {
            Some(admission) => self.health.failed(admission, failure, during, &error),
            None if failure == Failure::Refused => self.health.lost(during, &error),
            None => {}
        }
        Err(failure)
    }

    /// Runs `script` (EVALSHA, loading it on a NOSCRIPT answer) within the timeout.
    pub async fn run<T: FromRedisValue>(
        &self,
        during: &'static str,
        script: &Script,
        keys: &[&str],
        args: &[i64],
    ) -> Result<T, Unavailable> {
        let (admission, slot) = self.admitted(None)?;
        let send = |connection| invoke(script, keys, args, connection);
        self.attempt(during, Some(admission), slot, self.timeout, send)
            .await
            .map_err(|_| Unavailable)
    }

    /// Runs `script`, which must apply at most once per operation id among its keys (run again
    /// with the same id, it changes nothing and answers as applied): a try that times out is
    /// tried once more on another connection. Both tries together stay within
    /// `redis.timeout` (half of it for the first). See [`Unanswered`] for what a failure says
    /// about whether it ran.
    pub async fn run_once<T: FromRedisValue>(
        &self,
        during: &'static str,
        script: &Script,
        keys: &[&str],
        args: &[i64],
    ) -> Result<T, Unanswered> {
        let started = Instant::now();
        let (admission, slot) = self.admitted(None).map_err(|_| Unanswered::NotSent)?;
        let send = |connection| invoke(script, keys, args, connection);
        let first = self.timeout / 2;
        match self
            .attempt(during, Some(admission), slot, first, send)
            .await
        {
            Ok(value) => return Ok(value),
            Err(Failure::Timeout) => {}
            Err(failure) => return Err(Unanswered::of(failure)),
        }
        let left = self.timeout.saturating_sub(started.elapsed());
        let (admission, slot) = self.admitted(Some(slot)).map_err(|_| Unanswered::Lost)?;
        self.health.metrics().retries.increment(1);
        let send = |connection| invoke(script, keys, args, connection);
        match self
            .attempt(during, Some(admission), slot, left, send)
            .await
        {
            Ok(value) => Ok(value),
            // The first try may still run: it was sent.
            Err(_) => Err(Unanswered::Lost),
        }
    }

    /// Runs an at-most-once `script` (as [`Redis::run_once`]) off the request path, whatever
    /// the breaker says, until Redis answers or `within` has passed: what settles a call whose
    /// answer was lost.
    pub async fn settle<T: FromRedisValue>(
        &self,
        during: &'static str,
        script: &Script,
        keys: &[&str],
        args: &[i64],
        within: Duration,
    ) -> Result<T, Unavailable> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        while started.elapsed() < within {
            if let Some(slot) = self.pick(None) {
                let send = |connection| invoke(script, keys, args, connection);
                let timeout = self.connect_timeout;
                if let Ok(value) = self.attempt(during, None, slot, timeout, send).await {
                    return Ok(value);
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.check_interval);
        }
        Err(Unavailable)
    }

    /// Sends one command within the timeout.
    pub async fn query<T: FromRedisValue>(
        &self,
        during: &'static str,
        command: &Cmd,
    ) -> Result<T, Unavailable> {
        let (admission, slot) = self.admitted(None)?;
        let send = |mut connection: Connection| async move {
            command.query_async::<T>(&mut connection).await
        };
        self.attempt(during, Some(admission), slot, self.timeout, send)
            .await
            .map_err(|_| Unavailable)
    }

    /// `PING` on each command connection not set aside, even while the breaker is open (the
    /// background check; the caller closes the breaker on success).
    pub async fn probe(&self) -> Result<(), Unavailable> {
        self.connect().await?;
        let pool = self.pool.get().ok_or(Unavailable)?;
        let mut answered = 0;
        for (slot, connection) in pool.iter().enumerate() {
            if connection.stalled.load(Ordering::Acquire) {
                continue;
            }
            let send = |mut connection: Connection| async move {
                redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
            };
            let within = self.connect_timeout;
            self.attempt("probe", Some(Admission::Call), slot, within, send)
                .await
                .map_err(|_| Unavailable)?;
            answered += 1;
        }
        match answered {
            0 => Err(Unavailable),
            _ => Ok(()),
        }
    }
}

async fn invoke<T: FromRedisValue>(
    script: &Script,
    keys: &[&str],
    args: &[i64],
    mut connection: Connection,
) -> redis::RedisResult<T> {
    let mut invocation = script.prepare_invoke();
    for key in keys {
        invocation.key(*key);
    }
    for arg in args {
        invocation.arg(*arg);
    }
    invocation.invoke_async(&mut connection).await
}

/// A failed call's kind: a timeout, a connection gone, or an answer that is an error.
fn classify(err: &redis::RedisError) -> Failure {
    if err.is_timeout() {
        Failure::Timeout
    } else if err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_cluster_error()
        || err.is_unrecoverable_error()
    {
        Failure::Refused
    } else {
        Failure::Error
    }
}
