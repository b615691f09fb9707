//! `Application`: builds every part from `Settings`, binds, and serves. Tests and `main`
//! start the service the same way.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::web::Data;
use actix_web::{App, HttpServer};

use crate::admins::{Admins, CredentialCache};
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::http::{self, AppState, HmacGuard, JwtVerifier};
use crate::limits::Limits;
use crate::service::{ServiceOptions, TokenService};
use crate::shared::{Notice, NoticeSink, Notices, Redis};
use crate::store::{self, StoreError};
use crate::telemetry::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("redis.url is not a Redis URL")]
    RedisUrl,
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// A bound, not yet running, service.
pub struct Application {
    port: u16,
    server: Server,
    tokens: TokenService,
    limits: Arc<Limits>,
    admins: Arc<Admins>,
    /// How often the last uses of admin credentials are written.
    admin_uses_every: std::time::Duration,
    /// Console session limits, when the console is on: expired sessions are pruned.
    console_sessions: Option<crate::domain::session::SessionLimits>,
    ban_refresh: std::time::Duration,
    prune_interval: std::time::Duration,
    /// How often analytics rollups past their retention are deleted (`None`: analytics off).
    analytics_prune: Option<std::time::Duration>,
    /// Run the webhook dispatcher, the expiry sweep and their upkeep (`webhooks.enabled`).
    webhooks: bool,
    metrics: Arc<Metrics>,
    /// `metrics.address`: `/metrics` on a listener of its own.
    metrics_server: Option<(Server, u16)>,
    /// With Redis: the task keeping the invalidation subscription up (stopped with the app).
    subscription: Option<tokio::task::JoinHandle<()>>,
}

/// What another instance told, applied to this one's cache and limiters.
struct Listeners {
    tokens: TokenService,
    limits: Arc<Limits>,
    admins: Arc<Admins>,
}

impl NoticeSink for Listeners {
    fn apply(&self, notice: Notice) {
        self.tokens.apply_notice(&notice);
        self.limits.apply_notice(&notice);
        self.admins.apply_notice(&notice);
    }
}

impl Application {
    /// Production wiring: the system clock.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Migrates (when configured), connects lazily, binds `server.host:server.port`.
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let database = &settings.database;
        let mut open = database.open_options();
        open.credit_alerts = settings.webhooks.credit_alerts();
        let store = store::open(database.url.expose(), open).await?;
        // Batched uses are written by the service's own background task (started here, on the
        // main runtime: the MySQL pool must live on one runtime) and flushed by its shutdown.
        let options = ServiceOptions::from_settings(&settings);
        let metrics = Metrics::new(http::request_series());
        let mut tokens =
            TokenService::observed(store.clone(), clock.clone(), options, metrics.clone());
        let mut admins = Admins::new(
            &settings.auth.admin_tokens,
            store.clone(),
            clock.clone(),
            CredentialCache::from_settings(&settings),
        );
        let mut limits = Limits::new(
            &settings.rate_limiters,
            settings.api_tokens.rate_limit_on_successful_request,
            clock.clone(),
            store,
        )
        .observed_by(&metrics);
        let mut hmac = settings.service.hmac.as_ref().map(HmacGuard::new);
        let redis = match settings.redis.enabled() {
            false => None,
            true => Some(
                Redis::open(&settings.redis, metrics.redis(), clock.clone())
                    .map_err(|_| StartupError::RedisUrl)?,
            ),
        };
        let notices = redis.as_ref().map(|redis| Notices::start(redis.clone()));
        if let Some(notices) = &notices {
            tokens = tokens.telling(notices.clone());
            admins = admins.telling(notices.clone());
            limits = limits.shared_through(notices.clone());
            hmac = hmac.map(|guard| guard.shared_through(notices.redis().clone()));
        }
        let limits = Arc::new(limits);
        let admins = Arc::new(admins);
        let subscription = match &notices {
            None => None,
            Some(notices) => Some(
                subscribe(
                    notices.clone(),
                    Listeners {
                        tokens: tokens.clone(),
                        limits: limits.clone(),
                        admins: admins.clone(),
                    },
                )
                .await,
            ),
        };
        if limits.enabled() {
            if let Err(err) = limits.refresh_bans().await {
                tracing::warn!(error = %err, "could not load rate-limit bans; retrying in the background");
            }
        } else {
            tracing::warn!("rate_limiters.enabled = false: every rate limiter is off");
        }
        if settings.uses_dev_jwt_secret() {
            tracing::warn!(
                "auth.jwt_secret is the shipped development secret: set IAM__AUTH__JWT_SECRET"
            );
        }
        let state = Data::new(AppState {
            tokens: tokens.clone(),
            jwt: JwtVerifier::new(&settings.auth.jwt_secret, clock.clone()),
            hmac,
            redis,
            trusted_proxies: settings.server.trusted_proxies.clone(),
            limits: limits.clone(),
            admins: admins.clone(),
            clock,
            body_timeout: settings.server.body_timeout,
            openapi: http::openapi_rendered(&http::DocContext {
                token_limit: settings.api_tokens.limit_tokens_per_user,
            }),
            metrics: metrics.clone(),
            metrics_here: settings.metrics.address.is_empty(),
            queries: http::QueryCache::new(),
            forward_auth: http::forward_auth::ForwardAuth::new(&settings.forward_auth),
            console_limits: settings.console.limits(),
            store_kind: match settings.database.url.expose().starts_with("sqlite:") {
                true => "SQLite (embedded)",
                false => "MySQL",
            },
        });
        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { address, source })?
            .port();
        let metrics_state = state.clone();
        let console_enabled = settings.console.enabled;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(http::common_headers())
                .wrap(from_fn(http::request_id))
                .configure(|cfg| {
                    if console_enabled {
                        crate::console::routes(cfg)
                    }
                })
                .configure(http::routes)
        })
        .client_request_timeout(settings.server.request_timeout)
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            address: format!("port {port}"),
            source,
        })?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        // Bound after the public listener, so that a refused public address starts nothing.
        let metrics_server = match settings.metrics.address.as_str() {
            "" => None,
            address => Some(metrics_server(address, metrics_state)?),
        };
        Ok(Self {
            port,
            server: server.run(),
            tokens,
            limits,
            admins,
            admin_uses_every: settings.usage.flush_interval.max(ADMIN_USES_EVERY),
            console_sessions: settings.console.enabled.then(|| settings.console.limits()),
            ban_refresh: settings.rate_limiters.ban_refresh,
            prune_interval: settings.rate_limiters.prune_interval,
            analytics_prune: settings
                .analytics
                .enabled
                .then_some(settings.analytics.prune_interval),
            webhooks: settings.webhooks.enabled,
            metrics,
            metrics_server,
            subscription,
        })
    }

    /// The port of the `metrics.address` listener, when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(_, port)| *port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The in-process API of this application (tests inspect state through it).
    pub fn tokens(&self) -> &TokenService {
        &self.tokens
    }

    /// The admin credentials of this application.
    pub fn admins(&self) -> &Arc<Admins> {
        &self.admins
    }

    /// The rate limiters of this application.
    pub fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    /// Serves until SIGINT/SIGTERM, then drains in-flight requests and shuts the token service
    /// down (every counted use written). Ban refresh and key pruning run beside the server and
    /// stop with it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let mut background = tokio::task::JoinSet::new();
        if self.limits.enabled() {
            let limits = self.limits.clone();
            background.spawn(every(self.ban_refresh, move || {
                let limits = limits.clone();
                async move {
                    if let Err(err) = limits.refresh_bans().await {
                        tracing::warn!(error = %err, "ban refresh failed");
                    }
                }
            }));
            let limits = self.limits.clone();
            background.spawn(every(self.prune_interval, move || {
                let limits = limits.clone();
                async move { limits.prune() }
            }));
        }
        if let Some(period) = self.analytics_prune {
            let tokens = self.tokens.clone();
            background.spawn(every(period, move || {
                let tokens = tokens.clone();
                async move {
                    if let Err(err) = tokens.prune_analytics().await {
                        tracing::warn!(error = %err, "could not prune analytics rollups; retrying");
                    }
                }
            }));
        }
        if self.webhooks {
            let events = self.tokens.events();
            background.spawn(events.clone().run_dispatcher());
            background.spawn(events.clone().run_sweep());
            background.spawn(events.clone().run_upkeep());
        }
        let admins = self.admins.clone();
        background.spawn(every(self.admin_uses_every, move || {
            let admins = admins.clone();
            async move {
                if let Err(err) = admins.flush_uses().await {
                    tracing::warn!(error = %err, "could not record admin credential uses; retrying");
                }
            }
        }));
        if let Some(limits) = self.console_sessions {
            let admins = self.admins.clone();
            background.spawn(every(CONSOLE_PRUNE, move || {
                let admins = admins.clone();
                async move {
                    if let Err(err) = admins.prune_sessions(limits).await {
                        tracing::warn!(error = %err, "could not prune console sessions; retrying");
                    }
                }
            }));
        }
        let metrics = self.metrics.clone();
        background.spawn(every(METRICS_UPKEEP, move || {
            metrics.upkeep();
            std::future::ready(())
        }));
        let metrics_server = self.metrics_server.map(|(server, _)| {
            let handle = server.handle();
            background.spawn(async move {
                if let Err(err) = server.await {
                    tracing::error!(error = %err, "the metrics listener failed");
                }
            });
            handle
        });
        let served = self.server.await;
        if let Some(handle) = metrics_server {
            handle.stop(true).await;
        }
        background.shutdown().await;
        if let Some(subscription) = self.subscription {
            subscription.abort();
        }
        if let Err(err) = self.admins.flush_uses().await {
            tracing::warn!(error = %err, "could not record admin credential uses at shutdown");
        }
        self.tokens.shutdown().await;
        served
    }
}

/// Starts keeping the invalidation subscription up, and waits for its first attempt (at most
/// `redis.connect_timeout` and a little): an application that can reach Redis starts shared.
async fn subscribe(notices: Arc<Notices>, listeners: Listeners) -> tokio::task::JoinHandle<()> {
    let (told, first_try) = tokio::sync::oneshot::channel();
    let wait = notices.redis().connect_timeout() * 3;
    let task = tokio::spawn(notices.maintain(Arc::new(listeners), told));
    if tokio::time::timeout(wait, first_try).await.is_err() {
        tracing::warn!("Redis did not answer at startup; trying again in the background");
    }
    task
}

/// The last uses of admin credentials are written every `usage.flush_interval`, and at
/// least this seldom (`usage.flush_interval = 0` counts token uses synchronously; a credential's
/// last use is never written per request).
const ADMIN_USES_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How often recorded histogram samples are folded into buckets (bounded memory between
/// scrapes).
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);
/// How often ended console sessions are deleted (a request for one deletes it anyway).
const CONSOLE_PRUNE: std::time::Duration = std::time::Duration::from_secs(600);

/// `/metrics` alone on `address`, one worker.
fn metrics_server(address: &str, state: Data<AppState>) -> Result<(Server, u16), StartupError> {
    let bind_error = |source| StartupError::Bind {
        address: address.to_owned(),
        source,
    };
    let listener = TcpListener::bind(address).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(http::metrics_routes)
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(bind_error)?
    .run();
    Ok((server, port))
}

/// Runs `task` every `period` (the first run after one period), forever.
async fn every<F, Fut>(period: std::time::Duration, task: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        task().await;
    }
}
