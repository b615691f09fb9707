//! `iam-tokens roles …` (SPEC B4): create, list, show, change and delete roles, and the text
//! and JSON forms of a role and of a token's access.

use std::collections::BTreeSet;

use clap::{ArgGroup, Subcommand};
use iam_tokens::domain::access::{
    limits, AccessLimit, Grant, NewRole, RoleChange, RoleDescription, RoleName, RoleRecord,
    TokenAccess,
};
use iam_tokens::envelope::iso;
use iam_tokens::store::{RoleCreation, RoleDeletion, RoleUpdate};
use iam_tokens::TokenService;

use super::output::{fields, listed, table};
use super::AnyError;

#[derive(Subcommand)]
pub(crate) enum RolesCommand {
    /// Create a role and print it.
    Create {
        /// The role's name: 1–64 letters, digits, `_`, `.`, `:` or `-`.
        #[arg(value_parser = RoleName::parse)]
        name: RoleName,
        /// At most 200 characters.
        #[arg(long, value_name = "TEXT", value_parser = RoleDescription::parse)]
        description: Option<RoleDescription>,
        /// A permission it grants: a permission, `prefix.*` or `*`; repeatable.
        #[arg(long = "permission", value_name = "P", value_parser = Grant::parse)]
        permissions: Vec<Grant>,
    },
    /// Print every role: a table, or a JSON array with --json.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print one role, or it as a JSON object with --json.
    Show {
        /// The role's name.
        #[arg(value_parser = RoleName::parse)]
        name: RoleName,
        /// Print a JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change a role's description and permissions, then print it; every token holding it
    /// sees the change.
    #[command(group(
        ArgGroup::new("change")
            .args(["description", "clear_description", "add", "remove"])
            .required(true)
            .multiple(true)
    ))]
    Update {
        /// The role's name.
        #[arg(value_parser = RoleName::parse)]
        name: RoleName,
        /// A new description (at most 200 characters).
        #[arg(long, value_name = "TEXT", value_parser = RoleDescription::parse)]
        description: Option<RoleDescription>,
        /// Remove the description.
        #[arg(long, conflicts_with = "description")]
        clear_description: bool,
        /// A permission to grant; repeatable.
        #[arg(long, value_name = "P", value_parser = Grant::parse)]
        add: Vec<Grant>,
        /// A permission to stop granting (removed when also added); repeatable.
        #[arg(long, value_name = "P", value_parser = Grant::parse)]
        remove: Vec<Grant>,
    },
    /// Delete a role; refused while valid tokens hold it, unless --force.
    Delete {
        /// The role's name.
        #[arg(value_parser = RoleName::parse)]
        name: RoleName,
        /// Delete it even though valid tokens hold it (it is taken from them).
        #[arg(long)]
        force: bool,
    },
}

pub(crate) fn no_role(name: &RoleName) -> AnyError {
    format!("no role named {:?}", name.as_str()).into()
}

/// A token's roles, direct permissions and effective permissions (direct ∪ its roles').
pub(crate) fn access_fields(id: u64, access: &TokenAccess) -> String {
    fields(&[
        ("token", id.to_string()),
        ("roles", listed(&access.role_texts())),
        ("permissions", listed(&access.permission_texts())),
        ("effective", listed(&access.effective().texts())),
    ])
}

/// Runs `command` on the CLI's service (see `with_cli_service`, which shuts it down after).
pub(crate) async fn roles_command(
    tokens: TokenService,
    command: RolesCommand,
) -> Result<(), AnyError> {
    match command {
        RolesCommand::Create {
            name,
            description,
            permissions,
        } => {
            let permissions: BTreeSet<Grant> = permissions.into_iter().collect();
            if permissions.len() > limits::ROLE_PERMISSIONS {
                return Err(AccessLimit::RolePermissions.to_string().into());
            }
            let role = NewRole {
                name: name.clone(),
                description,
                permissions,
            };
            match tokens.create_role(role).await? {
                RoleCreation::Created(role) => print!("{}", role_fields(&role)),
                RoleCreation::Exists => {
                    return Err(format!("a role named {:?} exists", name.as_str()).into())
                }
                RoleCreation::LimitReached => {
                    return Err(AccessLimit::RoleCount.to_string().into())
                }
            }
        }
        RolesCommand::List { json } => {
            let roles = tokens.roles().await?;
            if json {
                let roles: Vec<RoleJson> = roles.iter().map(RoleJson::from).collect();
                println!("{}", serde_json::to_string_pretty(&roles)?);
            } else {
                let rows = roles
                    .iter()
                    .map(|role| {
                        vec![
                            role.name.to_string(),
                            role.tokens.to_string(),
                            listed(&role_grants(role)),
                            role.description
                                .as_ref()
                                .map_or_else(String::new, |d| d.as_str().to_owned()),
                        ]
                    })
                    .collect();
                let headers = ["NAME", "TOKENS", "PERMISSIONS", "DESCRIPTION"];
                print!("{}", table(&headers, rows));
            }
        }
        RolesCommand::Show { name, json } => {
            let role = tokens.role(&name).await?.ok_or_else(|| no_role(&name))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&RoleJson::from(&role))?);
            } else {
                print!("{}", role_fields(&role));
            }
        }
        RolesCommand::Update {
            name,
            description,
            clear_description,
            add,
            remove,
        } => {
            let change = RoleChange {
                description: if clear_description {
                    Some(None)
                } else {
                    description.map(Some)
                },
                add: add.into_iter().collect(),
                remove: remove.into_iter().collect(),
            };
            match tokens.update_role(&name, change).await? {
                RoleUpdate::Updated(role) => print!("{}", role_fields(&role)),
                RoleUpdate::NotFound => return Err(no_role(&name)),
                RoleUpdate::TooManyPermissions => {
                    return Err(AccessLimit::RolePermissions.to_string().into())
                }
            }
        }
        RolesCommand::Delete { name, force } => match tokens.delete_role(&name, force).await? {
            RoleDeletion::Deleted { tokens } => {
                println!("deleted role {name}; taken from {tokens} valid token(s)");
            }
            RoleDeletion::NotFound => return Err(no_role(&name)),
            RoleDeletion::InUse { tokens } => {
                return Err(format!("{tokens} valid token(s) hold this role; use --force").into())
            }
        },
    }
    Ok(())
}

/// A role's grants as written, sorted.
fn role_grants(role: &RoleRecord) -> Vec<String> {
    iam_tokens::domain::access::sorted_texts(&role.permissions)
}

/// A role as the admin API shows it, its fields in that order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct RoleJson<'r> {
    name: &'r str,
    description: Option<&'r str>,
    permissions: Vec<String>,
    tokens: u64,
    created_at: String,
    updated_at: String,
}

impl<'r> From<&'r RoleRecord> for RoleJson<'r> {
    fn from(role: &'r RoleRecord) -> Self {
        Self {
            name: role.name.as_str(),
            description: role.description.as_ref().map(RoleDescription::as_str),
            permissions: role_grants(role),
            tokens: role.tokens,
            created_at: iso(&role.created_at),
            updated_at: iso(&role.updated_at),
        }
    }
}

/// A role, one field a line.
fn role_fields(role: &RoleRecord) -> String {
    fields(&[
        ("name", role.name.to_string()),
        (
            "description",
            role.description
                .as_ref()
                .map_or_else(|| "none".to_owned(), |d| d.as_str().to_owned()),
        ),
        ("permissions", listed(&role_grants(role))),
        ("tokens", role.tokens.to_string()),
        ("created", iso(&role.created_at)),
        ("updated", iso(&role.updated_at)),
    ])
}
