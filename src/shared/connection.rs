//! The connections to Redis: a few multiplexed connections (a single server) or cluster
//! connections (Redis Cluster), every call bounded by `redis.timeout` and admitted by the
//! breaker (`breaker.rs`), so that no request waits on Redis longer than the timeout, and
//! while Redis is down none waits at all.
//!
//! A call that timed out leaves its connection waiting for an answer nobody reads: every
//! later call on it would queue behind that answer. The connection is set aside until a
//! `PING` on it answers; calls go to the others meanwhile.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, FromRedisValue, RedisFuture, Script, Value};

use super::breaker::{Admission, BreakerSettings};
use super::health::{Failure, Health};
use crate::clock::Clock;
use crate::config::RedisSettings;
use crate::telemetry::metrics::RedisMetrics;

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

/// The seed URLs of `redis.url` (one, or several comma-separated for a cluster): `redis://`
/// only (the client is built without TLS).
pub fn seed_urls(url: &str) -> Result<Vec<String>, redis::RedisError> {
    let seeds: Vec<String> = url
        .split(',')
        .map(str::trim)
        .filter(|seed| !seed.is_empty())
        .map(str::to_owned)
        .collect();
    if seeds.is_empty() {
        return Err(redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "no Redis URL",
        )));
    }
    for seed in &seeds {
        if !seed.starts_with("redis://") {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "not a redis:// URL",
            )));
        }
        Client::open(seed.as_str())?;
    }
    Ok(seeds)
}

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// One connection of the pool; `stalled` while it waits on an answer given up on.
struct Slot {
    connection: Connection,
    stalled: AtomicBool,
}

/// This instance's link to Redis. Build it with [`Redis::open`]; share one per application.
pub struct Redis {
    /// This link, for the tasks that bring a stalled connection back.
    me: Weak<Redis>,
    seeds: Vec<String>,
    cluster: bool,
    prefix: String,
    connections: usize,
    timeout: Duration,
    connect_timeout: Duration,
    check_interval: Duration,
    required_for_ready: bool,
    /// Set once the first connection succeeded (connecting happens off the request path).
    pool: OnceLock<Vec<Slot>>,
    next: AtomicUsize,
    health: Health,
}

impl Redis {
    /// The link `settings` describe, not yet connected (see [`Redis::connect`]). Down until
    /// the first connection succeeds. `clock` times the breaker's window and probes.
    pub fn open(
        settings: &RedisSettings,
        metrics: RedisMetrics,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, Unavailable> {
        let seeds = seed_urls(settings.url.expose()).map_err(|_| Unavailable)?;
        let breaker = BreakerSettings {
            window: settings.breaker_window,
            min_calls: settings.breaker_min_calls,
            failure_ratio: settings.breaker_failure_ratio,
            probe_interval: settings.check_interval,
        };
        Ok(Arc::new_cyclic(|me| Self {
            me: me.clone(),
            seeds,
            cluster: settings.cluster,
            prefix: settings.key_prefix.clone(),
            connections: settings.connections.max(1),
            timeout: settings.timeout,
            connect_timeout: settings.connect_timeout,
            check_interval: settings.check_interval,
            required_for_ready: settings.required_for_ready,
            pool: OnceLock::new(),
            next: AtomicUsize::new(0),
            health: Health::new(breaker, clock, metrics),
        }))
    }

    /// Opens the connections, if not done yet, within `connect_timeout`.
    pub async fn connect(&self) -> Result<(), Unavailable> {
        if self.pool.get().is_some() {
            return Ok(());
        }
        let opened = tokio::time::timeout(self.connect_timeout, self.open_pool()).await;
        match opened {
            Ok(Ok(pool)) => {
                let slots = pool
                    .into_iter()
                    .map(|connection| Slot {
                        connection,
                        stalled: AtomicBool::new(false),
                    })
                    .collect();
                let _ = self.pool.set(slots);
                Ok(())
            }
            Ok(Err(err)) => {
                self.health.lost("connect", &err);
                Err(Unavailable)
            }
            Err(_) => {
                self.health.lost("connect", &"timed out");
                Err(Unavailable)
            }
        }
    }

    async fn open_pool(&self) -> redis::RedisResult<Vec<Connection>> {
        let mut pool = Vec::with_capacity(self.connections);
        for _ in 0..self.connections {
            pool.push(if self.cluster {
                // No retries by the client: a limiter script is not idempotent, and one run
                // again after a lost answer would count a request twice (the quota scripts
                // retry themselves, by id: see `Redis::run_once`).
                let client = redis::cluster::ClusterClientBuilder::new(self.seeds.clone())
                    .retries(0)
                    .connection_timeout(self.connect_timeout)
                    .response_timeout(self.timeout)
                    .build()?;
                Connection::Cluster(client.get_async_connection().await?)
            } else {
                // Every call has its own deadline (`Redis::attempt`), none from the manager.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(None)
                    .set_number_of_retries(1)
                    .set_max_delay(self.check_interval);
                let client = Client::open(self.seeds[0].as_str())?;
                Connection::Single(ConnectionManager::new_lazy_with_config(client, config)?)
            });
        }
        Ok(pool)
    }

    /// `prefix` + `rest`: every key and channel of this deployment.
    pub fn key(&self, rest: std::fmt::Arguments<'_>) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 48);
        key.push_str(&self.prefix);
        std::fmt::Write::write_fmt(&mut key, rest).unwrap_or(());
        key
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    pub fn is_up(&self) -> bool {
        self.health.is_up()
    }

    pub fn required_for_ready(&self) -> bool {
        self.required_for_ready
    }

    pub fn check_interval(&self) -> Duration {
        self.check_interval
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// A URL for the subscription (one node of a cluster: every node hears every publish).
    pub fn subscription_url(&self) -> &str {
        &self.seeds[0]
    }

    /// The next connection not waiting on a late answer (other than `avoid`), if any.
    fn pick(&self, avoid: Option<usize>) -> Option<usize> {
        let pool = self.pool.get()?;
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..pool.len())
            .map(|k| (start + k) % pool.len())
            .find(|&i| Some(i) != avoid && !pool[i].stalled.load(Ordering::Acquire))
    }

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

    /// Sets connection `slot` aside (if not already) until a `PING` on it answers: it is
    /// then past the answer given up on. A connection that was dropped is made again by its
    /// manager meanwhile.
    fn stall(&self, slot: usize) {
        let Some(pool) = self.pool.get() else { return };
        if pool[slot].stalled.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            pool[slot].stalled.store(false, Ordering::Release);
            return;
        };
        let me = self.me.clone();
        runtime.spawn(async move {
            loop {
                let Some(redis) = me.upgrade() else { return };
                let Some(pool) = redis.pool.get() else { return };
                let mut connection = pool[slot].connection.clone();
                let ping = redis::cmd("PING");
                let within = redis.connect_timeout;
                match tokio::time::timeout(within, ping.query_async::<String>(&mut connection))
                    .await
                {
                    Ok(Ok(_)) => {
                        pool[slot].stalled.store(false, Ordering::Release);
                        return;
                    }
                    Err(_) => {} // still behind the late answer: ask again at once
                    Ok(Err(_)) => tokio::time::sleep(redis.check_interval).await,
                }
            }
        });
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

    /// Runs `script`, which must apply at most once per operation id among its keys (running
    /// it again answers what the first run did): a try that times out is tried once more on
    /// another connection. Both tries together stay within `redis.timeout` (half of it for
    /// the first). See [`Unanswered`] for what a failure says about whether it ran.
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
        for slot in 0..pool.len() {
            if pool[slot].stalled.load(Ordering::Acquire) {
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
