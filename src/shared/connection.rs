//! The connections to Redis: a few multiplexed connections (a single server) or cluster
//! connections (Redis Cluster), every call bounded by `redis.timeout` and skipped at once while
//! Redis is known to be down, so that no request ever waits on a dead Redis for longer than the
//! timeout, and then only the requests that found it dead.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, FromRedisValue, RedisFuture, Script, Value};

use super::health::Health;
use crate::config::RedisSettings;
use crate::telemetry::metrics::RedisMetrics;

/// A Redis call that did not answer: Redis is down, silent past the timeout, or not yet
/// connected. The caller goes on without it (or fails closed, where the spec says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Redis is unavailable")]
pub struct Unavailable;

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

/// This instance's link to Redis. Build it with [`Redis::open`]; share one per application.
pub struct Redis {
    seeds: Vec<String>,
    cluster: bool,
    prefix: String,
    connections: usize,
    timeout: Duration,
    connect_timeout: Duration,
    check_interval: Duration,
    required_for_ready: bool,
    /// Set once the first connection succeeded (connecting happens off the request path).
    pool: OnceLock<Vec<Connection>>,
    next: AtomicUsize,
    health: Health,
}

impl Redis {
    /// The link `settings` describe, not yet connected (see [`Redis::connect`]). Down until
    /// the first connection succeeds.
    pub fn open(settings: &RedisSettings, metrics: RedisMetrics) -> Result<Arc<Self>, Unavailable> {
        let seeds = seed_urls(settings.url.expose()).map_err(|_| Unavailable)?;
        Ok(Arc::new(Self {
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
            health: Health::new(metrics),
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
                let _ = self.pool.set(pool);
                Ok(())
            }
            Ok(Err(err)) => {
                self.health.failed("connect", &err);
                Err(Unavailable)
            }
            Err(_) => {
                self.health.failed("connect", &"timed out");
                Err(Unavailable)
            }
        }
    }

    async fn open_pool(&self) -> redis::RedisResult<Vec<Connection>> {
        let mut pool = Vec::with_capacity(self.connections);
        for _ in 0..self.connections {
            pool.push(if self.cluster {
                // No retries by the client: a limiter script is not idempotent, and one run
                // again after a lost answer would count a request twice.
                let client = redis::cluster::ClusterClientBuilder::new(self.seeds.clone())
                    .retries(0)
                    .connection_timeout(self.connect_timeout)
                    .response_timeout(self.timeout)
                    .build()?;
                Connection::Cluster(client.get_async_connection().await?)
            } else {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(Some(self.timeout))
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

    /// A connection for a call made now (counted), unless Redis is down.
    fn connection(&self) -> Result<Connection, Unavailable> {
        if !self.health.is_up() {
            return Err(Unavailable);
        }
        let pool = self.pool.get().ok_or(Unavailable)?;
        self.health.metrics().calls.increment(1);
        let index = self.next.fetch_add(1, Ordering::Relaxed) % pool.len();
        Ok(pool[index].clone())
    }

    /// Runs `script` (EVALSHA, loading it on a NOSCRIPT answer) within the timeout.
    pub async fn run<T: FromRedisValue>(
        &self,
        during: &'static str,
        script: &Script,
        keys: &[&str],
        args: &[i64],
    ) -> Result<T, Unavailable> {
        let mut connection = self.connection()?;
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let answer = tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection));
        self.settle(during, answer.await)
    }

    /// Sends one command within the timeout.
    pub async fn query<T: FromRedisValue>(
        &self,
        during: &'static str,
        command: &Cmd,
    ) -> Result<T, Unavailable> {
        let mut connection = self.connection()?;
        let answer = tokio::time::timeout(self.timeout, command.query_async(&mut connection));
        self.settle(during, answer.await)
    }

    /// `PING` on a command connection, even while Redis is marked down (the recovery probe).
    pub async fn probe(&self) -> Result<(), Unavailable> {
        self.connect().await?;
        let pool = self.pool.get().ok_or(Unavailable)?;
        for connection in pool {
            let mut connection = connection.clone();
            let ping = redis::cmd("PING");
            let answer = tokio::time::timeout(
                self.connect_timeout,
                ping.query_async::<String>(&mut connection),
            );
            self.settle("probe", answer.await)?;
        }
        Ok(())
    }

    fn settle<T>(
        &self,
        during: &'static str,
        answer: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, Unavailable> {
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) if is_outage(&err) => {
                self.health.failed(during, &err);
                Err(Unavailable)
            }
            // Redis answered, with an error (a script bug, a full memory): not an outage, and
            // not retried; the caller falls back for this request only.
            Ok(Err(err)) => {
                self.health.metrics().errors.increment(1);
                tracing::error!(during, error = %err, "Redis refused a call");
                Err(Unavailable)
            }
            Err(_) => {
                self.health.failed(during, &"timed out");
                Err(Unavailable)
            }
        }
    }
}

fn is_outage(err: &redis::RedisError) -> bool {
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_cluster_error()
        || err.is_unrecoverable_error()
}
