//! `iam-tokens token …`: create, list, revoke and a token's access.

use clap::Subcommand;
use iam_tokens::domain::access::{AccessChange, Grant, RoleName, TokenAccess};
use iam_tokens::domain::state::StateReason;
use iam_tokens::domain::{
    Digest, IpRestriction, Lifetime, LifetimeError, Metadata, Prefix, Privilege, TokenName, UserId,
};
use iam_tokens::envelope::{iso, Reason};
use iam_tokens::service::{CreateToken, Creation, Decision, GraceDecision, MAX_GRACE_MS};
use iam_tokens::store::{AccessOutcome, StateChange};
use iam_tokens::TokenService;

use super::output::{fields, print_json, table};
use super::roles::{access_fields, no_role};
use super::AnyError;

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
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
    /// Disable a token (SPEC B10): it verifies as `Token disabled` until enabled again; it is
    /// not revoked. Prints `enabled false` and whether this call changed it.
    Disable {
        /// The token's id (as `token list` shows it).
        id: u64,
        /// Why (1–200 characters), kept with the state and in the audit log.
        #[arg(long, value_parser = StateReason::parse)]
        reason: Option<StateReason>,
    },
    /// Rotate a token: a new key with everything of the old one; the old key keeps verifying
    /// for the grace (sharing one budget of limits and credits), then expires. Prints the new
    /// key (shown once).
    Rotate {
        /// The token's id.
        id: u64,
        /// How long the old key keeps verifying, e.g. 1h, 2days (at most 7 days; default 0).
        #[arg(long, value_parser = humantime::parse_duration)]
        grace: Option<std::time::Duration>,
        /// End the grace of an older key of the lineage now instead of refusing.
        #[arg(long)]
        force: bool,
        /// Why (1–200 characters), kept in the audit log.
        #[arg(long, value_parser = StateReason::parse)]
        reason: Option<StateReason>,
    },
    /// Enable a disabled token again: it verifies exactly as before.
    Enable {
        /// The token's id.
        id: u64,
        /// Why (1–200 characters), kept in the audit log.
        #[arg(long, value_parser = StateReason::parse)]
        reason: Option<StateReason>,
    },
}

/// Runs `command` on the CLI's service (see `with_cli_service`, which shuts it down after).
pub(crate) async fn token_command(
    tokens: TokenService,
    command: TokenCommand,
) -> Result<(), AnyError> {
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
        TokenCommand::Disable { id, reason } => set_state(&tokens, id, false, reason).await,
        TokenCommand::Enable { id, reason } => set_state(&tokens, id, true, reason).await,
        TokenCommand::Rotate {
            id,
            grace,
            force,
            reason,
        } => {
            let grace_ms = grace.map_or(0, |grace| {
                u64::try_from(grace.as_millis()).unwrap_or(u64::MAX)
            });
            if grace_ms > MAX_GRACE_MS {
                return Err("--grace is at most 7 days".into());
            }
            let rotated = match tokens
                .rotate_with_grace(id, grace_ms, force, reason)
                .await?
            {
                GraceDecision::Rotated(rotated) => rotated,
                GraceDecision::NotFound => return Err(no_token(id)),
                GraceDecision::Revoked => return Err(format!("token {id} is revoked").into()),
                GraceDecision::Expired => return Err(format!("token {id} has expired").into()),
                GraceDecision::InProgress { .. } => {
                    let message = format!(
                        "a rotation of token {id}'s lineage is in its grace; \
                         rotate the newest key, with --force to end the older grace now"
                    );
                    return Err(message.into());
                }
                GraceDecision::LimitReached { limit } => {
                    return Err(Reason::TooManyTokens { limit }.as_str().into_owned().into())
                }
                GraceDecision::CreateFailed => {
                    return Err("the new token could not be stored".into())
                }
            };
            println!("key (shown once): {}", rotated.raw_api_key);
            print!(
                "{}",
                fields(&[
                    ("id", rotated.new.id.to_string()),
                    ("replaces", rotated.previous_id.to_string()),
                    ("grace ends", iso(&rotated.grace_ends_at)),
                ])
            );
            Ok(())
        }
    }
}

/// Disables or enables a token and prints `enabled` and `changed` (a second call changes
/// nothing and says so).
async fn set_state(
    tokens: &TokenService,
    id: u64,
    enabled: bool,
    reason: Option<StateReason>,
) -> Result<(), AnyError> {
    let change = StateChange { enabled, reason };
    let changed = tokens
        .set_token_state(id, &change)
        .await?
        .ok_or_else(|| no_token(id))?;
    print!(
        "{}",
        fields(&[
            ("id", id.to_string()),
            ("enabled", enabled.to_string()),
            ("changed", changed.to_string()),
        ])
    );
    Ok(())
}

fn no_token(id: u64) -> AnyError {
    format!("no token with id {id}").into()
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
