//! `iam-tokens bans …`: list and lift the rate limiters' bans.

use chrono::Utc;
use clap::Subcommand;
use iam_tokens::envelope::iso;
use iam_tokens::store::{self, Audit};
use iam_tokens::Settings;

use super::output::table;
use super::AnyError;
use crate::{cli_notices, cli_store_options};

#[derive(Subcommand)]
pub(crate) enum BansCommand {
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

pub(crate) async fn bans_command(
    command: BansCommand,
    settings: &Settings,
) -> Result<(), AnyError> {
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
                actor: super::actor(),
                at: Utc::now(),
            };
            let stored = store.delete_ban(&limiter, &key, &audit).await?;
            if let Some(notices) = cli_notices(settings).await? {
                let state = iam_tokens::limits::SharedState::new(notices.redis().clone());
                let shared = state.lift(&limiter, &key).await.is_ok();
                notices.publish(iam_tokens::shared::Notice::Lifted {
                    limiter: limiter.clone(),
                    key: key.clone(),
                });
                notices.drained(settings.redis.connect_timeout).await;
                if !shared {
                    eprintln!("warning: could not lift the ban in Redis");
                }
            }
            if stored {
                println!("lifted {limiter} {key}");
                Ok(())
            } else {
                Err(format!("no ban of {key} by {limiter}").into())
            }
        }
    };
    result
}
