//! The `iam-tokens` command: serve the HTTP API, migrate, and operate on tokens from a shell.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use iam_tokens::domain::UserId;
use iam_tokens::http::JwtVerifier;
use iam_tokens::service::TokenService;
use iam_tokens::store;
use iam_tokens::{telemetry, Application, Settings, SystemClock};

mod cli;

use cli::admin_tokens::{admin_token_command, AdminTokenCommand};
use cli::bans::{bans_command, BansCommand};
use cli::roles::{roles_command, RolesCommand};
use cli::tokens::{token_command, TokenCommand};
use cli::webhooks::{webhooks_command, WebhooksCommand};
use cli::AnyError;

#[derive(Parser)]
#[command(
    name = "iam-tokens",
    version,
    about = "Self-hosted API-token service (riavzon-compatible)"
)]
struct Cli {
    /// Settings file layered over the defaults (else $IAM_CONFIG, else ./config.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (migrates first when database.migrate_on_start is on).
    Serve,
    /// Create the database if missing and apply pending migrations.
    Migrate,
    /// Print a signed access token for /api/manage/* (local use: signs with auth.jwt_secret).
    DevToken {
        /// The user id to put in `sub`.
        #[arg(long)]
        user: UserId,
        /// Lifetime, e.g. 15m, 1h, 7days.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// Operate on API tokens directly in the store.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Copy every token, metadata, audit event and ban from one store to another
    /// (e.g. sqlite://data/iam-tokens.db → mysql://…), then verify the row counts.
    Copy {
        /// The source database URL.
        #[arg(long)]
        from: String,
        /// The target database URL (created and migrated if needed).
        #[arg(long)]
        to: String,
        /// Replace what the target holds instead of refusing a non-empty target.
        #[arg(long)]
        force: bool,
    },
    /// Stored admin credentials: new, list, revoke (or a configuration entry).
    #[command(subcommand, name = "admin-token")]
    AdminToken(AdminTokenCommand),
    /// List or lift the rate limiters' permanent bans.
    #[command(subcommand)]
    Bans(BansCommand),
    /// Create, list, show, change and delete roles (named sets of permissions).
    #[command(subcommand)]
    Roles(RolesCommand),
    /// List, add and remove webhook endpoints (signed event delivery).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Validate the configuration and exit.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load and validate the layered configuration.
    Check,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    match run(cli.command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> Result<(), AnyError> {
    match command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "iam-tokens listening");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            let ran = store::migrate(settings.database.url.expose()).await?;
            println!("applied {ran} migration(s)");
        }
        Command::DevToken { user, ttl } => {
            let jwt = JwtVerifier::new(&settings.auth.jwt_secret, Arc::new(SystemClock));
            println!("{}", jwt.issue(user, ttl)?);
        }
        Command::Token(command) => {
            with_cli_service(&settings, |tokens| token_command(tokens, command)).await?
        }
        Command::Bans(command) => bans_command(command, &settings).await?,
        Command::Roles(command) => {
            with_cli_service(&settings, |tokens| roles_command(tokens, command)).await?
        }
        Command::Webhooks(command) => {
            with_cli_service(&settings, |tokens| webhooks_command(tokens, command)).await?
        }
        Command::Copy { from, to, force } => {
            // One call moves a whole store: bounded generously, not by `database.timeout`.
            let options = store::OpenOptions {
                timeout: Duration::from_secs(3600),
                ..store::OpenOptions::new(2)
            };
            let source = store::open(&from, options).await?;
            let target = store::open(&to, options).await?;
            match store::copy(source.as_ref(), target.as_ref(), force).await? {
                store::CopyOutcome::Copied(rows) => println!(
                    "copied {} tokens, {} audit events, {} bans; the target's counts match",
                    rows.tokens, rows.events, rows.bans
                ),
                store::CopyOutcome::TargetNotEmpty(rows) => {
                    return Err(format!(
                        "the target already holds {} tokens, {} audit events and {} bans; \
                         pass --force to replace them",
                        rows.tokens, rows.events, rows.bans
                    )
                    .into())
                }
            }
        }
        Command::AdminToken(command) => admin_token_command(command, &settings).await?,
        Command::Config(ConfigCommand::Check) => println!("configuration OK"),
    }
    Ok(())
}

/// One-shot commands: two connections, migrated, bounded like the service's calls.
fn cli_store_options(settings: &Settings) -> store::OpenOptions {
    store::OpenOptions {
        timeout: settings.database.timeout,
        ..store::OpenOptions::new(2)
    }
}

/// The service for one-shot commands, acting as `cli`: straight to the store, no cache, no
/// batched counting.
/// Runs one command on the CLI's service, then shuts it down: with Redis, its changes are told
/// to running instances before the process exits.
async fn with_cli_service<F, Fut>(settings: &Settings, command: F) -> Result<(), AnyError>
where
    F: FnOnce(TokenService) -> Fut,
    Fut: std::future::Future<Output = Result<(), AnyError>>,
{
    let tokens = cli_service(settings).await?;
    let result = command(tokens.clone()).await;
    tokens.shutdown().await;
    result
}

/// With Redis, changes are told to running instances (call `shutdown` before exiting).
async fn cli_service(settings: &Settings) -> Result<TokenService, AnyError> {
    let url = settings.database.url.expose();
    let store = store::open(url, cli_store_options(settings)).await?;
    // Webhook URLs are checked against the configured `webhooks` rules, as by `serve`.
    let options = iam_tokens::service::ServiceOptions {
        limit_tokens_per_user: settings.api_tokens.limit_tokens_per_user,
        cache: None,
        batch_usage: false,
        flush_every: None,
        analytics: None,
        webhooks: settings.webhooks.clone(),
    };
    let service =
        TokenService::with_options(store, Arc::new(SystemClock), options).acting_as(cli::actor());
    Ok(match cli_notices(settings).await? {
        Some(notices) => service.telling(notices),
        None => service,
    })
}

/// The invalidation channel of running instances, when `redis.url` is set and Redis answers.
async fn cli_notices(
    settings: &Settings,
) -> Result<Option<Arc<iam_tokens::shared::Notices>>, AnyError> {
    use iam_tokens::shared::{Notices, Redis};
    if !settings.redis.enabled() {
        return Ok(None);
    }
    let metrics = iam_tokens::telemetry::Metrics::disabled().redis();
    let redis = Redis::open(&settings.redis, metrics, Arc::new(iam_tokens::SystemClock))
        .map_err(|_| "redis.url is not a Redis URL")?;
    if redis.probe().await.is_err() {
        eprintln!(
            "warning: Redis does not answer; running instances see this change within \
             verify.cache_ttl"
        );
        return Ok(None);
    }
    redis.health().recovered();
    Ok(Some(Notices::start(redis)))
}
