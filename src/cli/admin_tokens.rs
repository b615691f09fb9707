//! `iam-tokens admin-token …` (SPEC B9): stored admin credentials, straight into the store. A
//! running service honours a new credential at once (it reads an unknown secret from the
//! store) and a revocation at once with Redis (else within `verify.cache_ttl`).

use std::sync::Arc;
use std::time::Duration;

use clap::{ArgGroup, Subcommand};
use iam_tokens::admins::{Admins, Caller, CreateCredential, CredentialCache, ManageError};
use iam_tokens::domain::access::scope::ScopeList;
use iam_tokens::domain::access::Scopes;
use iam_tokens::domain::credential::{CredentialName, CredentialRecord};
use iam_tokens::domain::{Digest, Lifetime};
use iam_tokens::envelope::iso;
use iam_tokens::{store, Clock, Settings, SystemClock};

use super::output::{fields, listed, table};
use super::AnyError;
use crate::{cli_notices, cli_store_options};

#[derive(Subcommand)]
pub(crate) enum AdminTokenCommand {
    /// Create a stored admin credential and print its secret (shown once).
    #[command(group(ArgGroup::new("grants").args(["preset", "scopes"]).required(true)))]
    New {
        /// Its name, 1–64 characters; the audit log shows it beside every change it makes.
        #[arg(long, value_parser = CredentialName::parse)]
        name: CredentialName,
        /// root, read-only, support, billing or verifier.
        #[arg(long)]
        preset: Option<String>,
        /// A scope grant (`tokens.read`, `quotas.*`, `*.read`); repeatable.
        #[arg(long = "scope", value_name = "S")]
        scopes: Vec<String>,
        /// A lifetime, e.g. 90d, 12h (default: it does not expire).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires: Option<Duration>,
    },
    /// Print every stored credential (never a secret).
    List,
    /// Revoke a stored credential: running instances refuse it at once (with Redis).
    Revoke {
        /// The credential's id (see `admin-token list`).
        id: u64,
    },
    /// Print a new secret and the `auth.admin_tokens` entry for it, storing nothing (a
    /// credential in the configuration acts as `*`).
    Config {
        /// The name the audit log records (`config:<name>`).
        #[arg(long, default_value = "ops")]
        name: String,
    },
}

pub(crate) async fn admin_token_command(
    command: AdminTokenCommand,
    settings: &Settings,
) -> Result<(), AnyError> {
    if let AdminTokenCommand::Config { name } = &command {
        let secret = format!("iam_admin_{}", iam_tokens::domain::random_secret_hex());
        let digest = Digest::of(&secret);
        println!("secret (shown once, give it to the admin client): {secret}");
        println!("add to config.toml under [auth]:");
        println!(
            "admin_tokens = [{{ name = \"{name}\", digest = \"{}\" }}]",
            digest.as_str()
        );
        return Ok(());
    }
    let url = settings.database.url.expose();
    let store = store::open(url, cli_store_options(settings)).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut admins = Admins::new(&[], store, clock.clone(), CredentialCache::default());
    let notices = cli_notices(settings).await?;
    if let Some(notices) = &notices {
        admins = admins.telling(notices.clone());
    }
    // The command line reaches the store itself: it holds every scope.
    let cli = Caller {
        actor: super::actor(),
        scopes: Arc::new(Scopes::everything()),
    };
    let now = clock.now();
    let result = match command {
        AdminTokenCommand::New {
            name,
            preset,
            scopes,
            expires,
        } => {
            let scopes = match preset {
                Some(preset) => ScopeList::preset(&preset),
                None => ScopeList::parse(&scopes),
            }
            .map_err(|err| format!("{}: {err}", err.field()))?;
            let expires_at = match expires {
                None => None,
                Some(lifetime) => {
                    let ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
                    Some(Lifetime::from_ms(ms)?.expiry_from(now))
                }
            };
            let request = CreateCredential {
                name,
                scopes,
                expires_at,
            };
            admins.create(&cli, request).await.map(|(record, secret)| {
                println!("secret (shown once): {}", secret.expose());
                print!("{}", described(&record, now));
            })
        }
        AdminTokenCommand::List => match admins.credentials().await {
            Ok(records) => {
                print!("{}", listing(&records, now));
                Ok(())
            }
            Err(err) => Err(ManageError::Store(err)),
        },
        AdminTokenCommand::Revoke { id } => admins
            .revoke(&cli, id)
            .await
            .map(|record| print!("{}", described(&record, now))),
        AdminTokenCommand::Config { .. } => Ok(()),
    };
    if let Some(notices) = notices {
        notices.drained(Duration::from_secs(2)).await;
    }
    result.map_err(|err| match err {
        ManageError::NotFound => "no credential with that id".into(),
        other => other.into(),
    })
}

fn status(record: &CredentialRecord, now: chrono::DateTime<chrono::Utc>) -> &'static str {
    match (record.revoked_at, record.is_active_at(now)) {
        (Some(_), _) => "revoked",
        (None, false) => "expired",
        (None, true) => "active",
    }
}

fn described(record: &CredentialRecord, now: chrono::DateTime<chrono::Utc>) -> String {
    let time = |at: Option<chrono::DateTime<chrono::Utc>>| at.as_ref().map_or("-".into(), iso);
    fields(&[
        ("id", record.id.to_string()),
        ("name", record.name.clone()),
        ("scopes", listed(record.scopes.texts())),
        ("status", status(record, now).to_owned()),
        ("created", iso(&record.created_at)),
        ("created by", record.created_by.to_string()),
        ("expires", time(record.expires_at)),
        ("last used", time(record.last_used_at)),
        ("revoked", time(record.revoked_at)),
    ])
}

fn listing(records: &[CredentialRecord], now: chrono::DateTime<chrono::Utc>) -> String {
    let time = |at: Option<chrono::DateTime<chrono::Utc>>| at.as_ref().map_or("-".into(), iso);
    let rows = records
        .iter()
        .map(|record| {
            vec![
                record.id.to_string(),
                record.name.clone(),
                listed(record.scopes.texts()),
                status(record, now).to_owned(),
                time(record.expires_at),
                time(record.last_used_at),
            ]
        })
        .collect();
    table(
        &["ID", "NAME", "SCOPES", "STATUS", "EXPIRES", "LAST USED"],
        rows,
    )
}
