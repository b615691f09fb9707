//! The connections to Redis: a few multiplexed connections (a single server) or cluster
//! connections (Redis Cluster), every call bounded by `redis.timeout` and admitted by the
//! breaker (`breaker.rs`), so that no request waits on Redis longer than the timeout, and
//! while Redis is down none waits at all.
//!
//! A call that timed out leaves its connection waiting for an answer nobody reads: every
//! later call on it would queue behind that answer. The connection is set aside until a
//! `PING` on it answers; calls go to the others meanwhile. How one call is made — admitted,
//! timed, retried, settled — is `calls.rs`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, RedisFuture, Value};

use super::breaker::BreakerSettings;
use super::calls::Unavailable;
use super::health::Health;
use crate::clock::Clock;
use crate::config::RedisSettings;
use crate::telemetry::metrics::RedisMetrics;

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
pub(super) enum Connection {
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
pub(super) struct Slot {
    pub(super) connection: Connection,
    pub(super) stalled: AtomicBool,
}

/// This instance's link to Redis. Build it with [`Redis::open`]; share one per application.
pub struct Redis {
    /// This link, for the tasks that bring a stalled connection back.
    me: Weak<Redis>,
    seeds: Vec<String>,
    cluster: bool,
    prefix: String,
    connections: usize,
    pub(super) timeout: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) check_interval: Duration,
    required_for_ready: bool,
    /// Set once the first connection succeeded (connecting happens off the request path).
    pub(super) pool: OnceLock<Vec<Slot>>,
    next: AtomicUsize,
    pub(super) health: Health,
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
    pub(super) fn pick(&self, avoid: Option<usize>) -> Option<usize> {
        let pool = self.pool.get()?;
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..pool.len())
            .map(|k| (start + k) % pool.len())
            .find(|&i| Some(i) != avoid && !pool[i].stalled.load(Ordering::Acquire))
    }

    /// Sets connection `slot` aside (if not already) until a `PING` on it answers: it is
    /// then past the answer given up on. A connection that was dropped is made again by its
    /// manager meanwhile.
    pub(super) fn stall(&self, slot: usize) {
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
}
