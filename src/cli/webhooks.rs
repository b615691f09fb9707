//! `iam-tokens webhooks …` (SPEC B12): list, add and remove webhook endpoints.

use clap::Subcommand;
use iam_tokens::domain::webhook::{
    EndpointRecord, EndpointSecret, EndpointUrl, EventFilter, NewEndpoint, WebhookDescription,
};
use iam_tokens::envelope::iso;
use iam_tokens::TokenService;

use super::output::{fields, listed, table};
use super::AnyError;

#[derive(Subcommand)]
pub(crate) enum WebhooksCommand {
    /// Print every endpoint: a table, or a JSON array with --json (never a secret).
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add an endpoint and print it with its signing secret (shown once).
    Add {
        /// `https://…` (`http://` only with webhooks.allow_http).
        #[arg(long, value_parser = parse_url)]
        url: EndpointUrl,
        /// An event type or pattern (`token.created`, `token.*`, `*`); repeatable.
        #[arg(long = "event", value_name = "E", required = true)]
        events: Vec<String>,
        /// At most 200 characters.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// Send tokens' metadata in `data.metadata`.
        #[arg(long)]
        include_metadata: bool,
    },
    /// Remove an endpoint and its delivery log.
    Remove {
        /// The endpoint's id.
        id: u64,
    },
}

fn parse_url(text: &str) -> Result<EndpointUrl, String> {
    EndpointUrl::parse(text).map_err(|err| err.to_string())
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct EndpointJson<'a> {
    id: u64,
    url: &'a str,
    description: Option<&'a str>,
    events: &'a [String],
    include_metadata: bool,
    enabled: bool,
    disabled_reason: Option<&'static str>,
    created_at: String,
}

impl<'a> From<&'a EndpointRecord> for EndpointJson<'a> {
    fn from(endpoint: &'a EndpointRecord) -> Self {
        Self {
            id: endpoint.id,
            url: &endpoint.url,
            description: endpoint.description.as_deref(),
            events: endpoint.events.patterns(),
            include_metadata: endpoint.include_metadata,
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason.map(|r| r.as_str()),
            created_at: iso(&endpoint.created_at),
        }
    }
}

/// Runs `command` on the CLI's service.
pub(crate) async fn webhooks_command(
    tokens: TokenService,
    command: WebhooksCommand,
) -> Result<(), AnyError> {
    match command {
        WebhooksCommand::List { json } => {
            let endpoints = tokens.webhooks().await?;
            if json {
                let rows: Vec<EndpointJson> = endpoints.iter().map(EndpointJson::from).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            let rows = endpoints
                .iter()
                .map(|endpoint| {
                    vec![
                        endpoint.id.to_string(),
                        match endpoint.disabled_reason {
                            None => "enabled".to_owned(),
                            Some(reason) => format!("disabled ({})", reason.as_str()),
                        },
                        listed(endpoint.events.patterns()),
                        endpoint.url.clone(),
                    ]
                })
                .collect();
            print!("{}", table(&["ID", "STATE", "EVENTS", "URL"], rows));
        }
        WebhooksCommand::Add {
            url,
            events,
            description,
            include_metadata,
        } => {
            let description = description
                .map(|text| {
                    WebhookDescription::parse(&text).ok_or("description is at most 200 characters")
                })
                .transpose()?;
            let endpoint = NewEndpoint {
                url,
                description,
                events: EventFilter::parse(&events)?,
                include_metadata,
                secret: EndpointSecret::generate(),
            };
            let created = tokens.create_webhook(endpoint).await?;
            print!(
                "{}",
                fields(&[
                    ("id", created.id.to_string()),
                    ("url", created.url.clone()),
                    ("events", listed(created.events.patterns())),
                    ("secret", created.secret.expose().to_owned()),
                ])
            );
            eprintln!("The secret is shown once: give it to your receiver now.");
        }
        WebhooksCommand::Remove { id } => {
            if !tokens.delete_webhook(id).await? {
                return Err(format!("no webhook with id {id}").into());
            }
            println!("removed webhook {id}");
        }
    }
    Ok(())
}
