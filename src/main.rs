//! The `iam-tokens` command: serve the HTTP API, migrate, and operate on tokens from a shell.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use clap::{Parser, Subcommand};
use iam_tokens::domain::access::{AccessChange, Grant, RoleName, TokenAccess};
use iam_tokens::domain::{
    Actor, Digest, IpRestriction, Lifetime, LifetimeError, Metadata, Prefix, Privilege, TokenName,
    UserId,
};
use iam_tokens::envelope::{iso, Reason};
use iam_tokens::http::JwtVerifier;
use iam_tokens::service::{CreateToken, Creation, Decision, TokenService};
use iam_tokens::store::{self, AccessOutcome, Audit};
use iam_tokens::{telemetry, Application, Settings, SystemClock};

mod cli;

use cli::output::{print_json, table};
use cli::roles::{access_fields, no_role, roles_command, RolesCommand};
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
    /// Admin API credentials.
    #[command(subcommand, name = "admin-token")]
    AdminToken(AdminTokenCommand),
    /// List or lift the rate limiters' permanent bans.
    #[command(subcommand)]
    Bans(BansCommand),
    /// Create, list, show, change and delete roles (named sets of permissions).
    #[command(subcommand)]
    Roles(RolesCommand),
    /// Validate the configuration and exit.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print the creation result (the raw key is shown only here) as JSON;
    /// a refusal is printed to stderr with exit code 1.
    Create {
        #[arg(long)]
        user: UserId,
        /// 1–50 characters.
        #[arg(long)]
        name: String,
        /// demo | restricted | protected | full | custom
        #[arg(long, default_value = "restricted")]
        privilege: Privilege,
        /// Key prefix: 1–32 letters, digits or `-`.
        #[arg(long, default_value = "api", value_parser = Prefix::parse)]
        prefix: Prefix,
        /// Lifetime, e.g. 30m, 90days (1 ms … 100 years); never expires when omitted.
        #[arg(long, value_parser = parse_lifetime)]
        expires: Option<Lifetime>,
        /// Allowed address or CIDR range; repeat for several.
        #[arg(long = "ip")]
        ips: Vec<String>,
        /// Admin metadata as key=value (numbers, true, false and null are typed); repeatable.
        #[arg(long = "meta", value_name = "KEY=VALUE")]
        meta: Vec<String>,
        /// A role to give it (it must exist); repeatable.
        #[arg(long = "role", value_name = "ROLE", value_parser = RoleName::parse)]
        roles: Vec<RoleName>,
        /// A direct grant: a permission, `prefix.*` or `*`; repeatable.
        #[arg(long = "permission", value_name = "P", value_parser = Grant::parse)]
        permissions: Vec<Grant>,
    },
    /// Print a user's counts and valid tokens: a table, or the JSON envelope with --json.
    List {
        #[arg(long)]
        user: UserId,
        /// Print the JSON envelope (riavzon's listValidTokens) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token given its raw key or its 64-hex digest, whatever its privilege.
    Revoke {
        /// The raw key or its digest.
        key: String,
    },
    /// Give or take a token's roles and direct permissions, then print its roles, direct
    /// permissions and effective permissions (with no change, only print them).
    Access {
        /// The token's id (as `token list` shows it).
        id: u64,
        /// A role to give (it must exist); repeatable.
        #[arg(long = "add-role", value_name = "ROLE", value_parser = RoleName::parse)]
        add_roles: Vec<RoleName>,
        /// A role to take away; repeatable.
        #[arg(long = "remove-role", value_name = "ROLE", value_parser = RoleName::parse)]
        remove_roles: Vec<RoleName>,
        /// A direct permission to give: a permission, `prefix.*` or `*`; repeatable.
        #[arg(long = "add-permission", value_name = "P", value_parser = Grant::parse)]
        add_permissions: Vec<Grant>,
        /// A direct permission to take away; repeatable.
        #[arg(long = "remove-permission", value_name = "P", value_parser = Grant::parse)]
        remove_permissions: Vec<Grant>,
    },
}

#[derive(Subcommand)]
enum AdminTokenCommand {
    /// Print a new admin secret (shown once) and the auth.admin_tokens entry for it.
    New {
        /// The name the audit log records as admin:<name>.
        #[arg(long, default_value = "ops")]
        name: String,
    },
}

#[derive(Subcommand)]
enum BansCommand {
    /// Print every stored ban: a table, or a JSON array with --json.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Lift one ban; running instances drop it within rate_limiters.ban_refresh.
    Lift {
        /// The limiter's name as listed (e.g. rotation_rate_limiter).
        limiter: String,
        /// The banned key as listed (e.g. 203.0.113.7_42).
        key: String,
    },
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
        Command::Token(command) => token_command(command, &settings).await?,
        Command::Bans(command) => bans_command(command, &settings).await?,
        Command::Roles(command) => roles_command(command, &settings).await?,
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
        Command::AdminToken(AdminTokenCommand::New { name }) => {
            let secret = format!("iam_admin_{}", iam_tokens::domain::random_secret_hex());
            let digest = Digest::of(&secret);
            println!("secret (shown once, give it to the admin client): {secret}");
            println!("add to config.toml under [auth]:");
            println!(
                "admin_tokens = [{{ name = \"{name}\", digest = \"{}\" }}]",
                digest.as_str()
            );
        }
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
async fn cli_service(settings: &Settings) -> Result<TokenService, AnyError> {
    let url = settings.database.url.expose();
    let store = store::open(url, cli_store_options(settings)).await?;
    Ok(TokenService::new(
        store,
        Arc::new(SystemClock),
        settings.api_tokens.limit_tokens_per_user,
    )
    .acting_as(Actor::Cli))
}

async fn token_command(command: TokenCommand, settings: &Settings) -> Result<(), AnyError> {
    let tokens = cli_service(settings).await?;
    match command {
        TokenCommand::Create {
            user,
            name,
            privilege,
            prefix,
            expires,
            ips,
            meta,
            roles,
            permissions,
        } => {
            let name = TokenName::parse(&name)?;
            let metadata = Metadata::parse(&meta_object(&meta)?)?;
            let ips = IpRestriction::parse(&ips)?;
            let access = TokenAccess::new(
                roles.into_iter().collect(),
                permissions.into_iter().collect(),
            );
            let request = CreateToken::new(user, privilege, name)
                .prefix(prefix)
                .lifetime(expires)
                .ips(ips)
                .metadata(metadata)
                .access(access);
            match tokens.create_outcome(request).await {
                Ok(Creation::UnknownRole(role)) => {
                    Err(format!("no role named {:?}", role.as_str()).into())
                }
                Ok(Creation::TooMuchAccess(limit)) => Err(limit.to_string().into()),
                Ok(decided) => {
                    let now = tokens.clock().now();
                    print_json(&iam_tokens::Results {
                        date: now,
                        outcome: decided.into_data(),
                    })
                }
                Err(_) => Err(Reason::ListServerError.as_str().into_owned().into()),
            }
        }
        TokenCommand::List { user, json: true } => {
            print_json(&tokens.list_valid_tokens(user).await)
        }
        TokenCommand::List { user, json: false } => {
            let list = tokens
                .list_valid_tokens_outcome(user)
                .await
                .map_err(|_| Reason::ListServerError.as_str().into_owned())?;
            println!(
                "user {user}: {} valid, {} invalid, {} in all",
                list.total_valid_tokens, list.total_invalid_tokens, list.total
            );
            let rows = list.token_list.unwrap_or_default();
            let rows = rows.into_iter().map(|row| {
                vec![
                    row.id.to_string(),
                    row.name,
                    row.privilege_type.as_str().to_owned(),
                    iso(&row.created_at),
                    row.expires_at
                        .map_or_else(|| "never".to_owned(), |t| iso(&t)),
                    row.last_used
                        .map_or_else(|| "never".to_owned(), |t| iso(&t)),
                    row.usage_count.to_string(),
                    row.restricted_to_ip_address
                        .map_or_else(|| "anywhere".to_owned(), |ips| ips.join(",")),
                ]
            });
            let headers = [
                "ID",
                "NAME",
                "PRIVILEGE",
                "CREATED",
                "EXPIRES",
                "LAST USED",
                "USES",
                "IPS",
            ];
            print!("{}", table(&headers, rows.collect()));
            Ok(())
        }
        TokenCommand::Revoke { key } => {
            let digest = Digest::of_presented(key.trim());
            print_json(&tokens.revoke_digest(&digest, None).await)
        }
        TokenCommand::Access {
            id,
            add_roles,
            remove_roles,
            add_permissions,
            remove_permissions,
        } => {
            let change = AccessChange {
                add_roles: add_roles.into_iter().collect(),
                remove_roles: remove_roles.into_iter().collect(),
                add_permissions: add_permissions.into_iter().collect(),
                remove_permissions: remove_permissions.into_iter().collect(),
            };
            // Nothing to change: only read it (no audit event for nothing).
            let record = if change == AccessChange::default() {
                tokens.token_by_id(id).await?.ok_or_else(|| no_token(id))?
            } else {
                match tokens.change_access(id, change).await? {
                    AccessOutcome::Updated(record) => *record,
                    AccessOutcome::NotFound => return Err(no_token(id)),
                    AccessOutcome::UnknownRole(role) => return Err(no_role(&role)),
                    AccessOutcome::Limit(limit) => return Err(limit.to_string().into()),
                }
            };
            print!("{}", access_fields(record.id, &record.access));
            Ok(())
        }
    }
}

fn no_token(id: u64) -> AnyError {
    format!("no token with id {id}").into()
}

async fn bans_command(command: BansCommand, settings: &Settings) -> Result<(), AnyError> {
    let url = settings.database.url.expose();
    let store = store::open(url, cli_store_options(settings)).await?;
    let result = match command {
        BansCommand::List { json } => {
            let bans = store.list_bans().await?;
            if json {
                let bans: Vec<serde_json::Value> = bans
                    .into_iter()
                    .map(|ban| {
                        serde_json::json!({
                            "limiter": ban.limiter,
                            "key": ban.key,
                            "reason": ban.reason,
                            "createdAt": iso(&ban.created_at),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&bans)?);
            } else {
                let rows = bans
                    .into_iter()
                    .map(|ban| vec![ban.limiter, ban.key, ban.reason, iso(&ban.created_at)])
                    .collect();
                print!("{}", table(&["LIMITER", "KEY", "REASON", "CREATED"], rows));
            }
            Ok(())
        }
        BansCommand::Lift { limiter, key } => {
            let audit = Audit {
                actor: Actor::Cli,
                at: Utc::now(),
            };
            if store.delete_ban(&limiter, &key, &audit).await? {
                println!("lifted {limiter} {key}");
                Ok(())
            } else {
                Err(format!("no ban of {key} by {limiter}").into())
            }
        }
    };
    result
}

/// `key=value` pairs as a JSON object; a value that reads as a JSON number, boolean or null
/// keeps that type, anything else is a string.
fn meta_object(pairs: &[String]) -> Result<serde_json::Value, AnyError> {
    let mut object = serde_json::Map::new();
    for pair in pairs {
        let (key, text) = pair
            .split_once('=')
            .ok_or_else(|| format!("--meta {pair:?}: expected KEY=VALUE"))?;
        let value = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(
                v @ (serde_json::Value::Number(_)
                | serde_json::Value::Bool(_)
                | serde_json::Value::Null),
            ) => v,
            _ => serde_json::Value::String(text.to_owned()),
        };
        object.insert(key.to_owned(), value);
    }
    Ok(serde_json::Value::Object(object))
}

/// A humantime duration (`30m`, `90days`) as a token lifetime.
fn parse_lifetime(text: &str) -> Result<Lifetime, String> {
    let duration = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    u64::try_from(duration.as_millis())
        .map_err(|_| LifetimeError.to_string())
        .and_then(|ms| Lifetime::from_ms(ms).map_err(|err| err.to_string()))
}
