//! `/api/manage/{action}`: a BFF acting for a signed-in user.

use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;

use super::body::{json_body, BodyError, MANAGE_BODY_LIMIT};
use super::client_ip;
use super::limit::enforce;
use super::response::json;
use super::{ApiError, AppState, User};
use crate::domain::{
    Actor, IpRestriction, Lifetime, Prefix, PrefixError, Privilege, PublicIdentifier, TokenName,
    UserId,
};
use crate::envelope::{Reason, Results};
use crate::limits::{ip_key, Operation};
use crate::service::{CreateToken, ManagerAction};

/// The seven actions and the status each answers on failure (SPEC A7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    NewToken,
    ListMetadata,
    Revoke,
    Metadata,
    Rotate,
    IpRestrictionUpdate,
    PrivilegeUpdate,
}

impl Action {
    pub(super) const ALL: [Self; 7] = [
        Self::NewToken,
        Self::ListMetadata,
        Self::Revoke,
        Self::Metadata,
        Self::Rotate,
        Self::IpRestrictionUpdate,
        Self::PrivilegeUpdate,
    ];

    /// The action's path segment.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::NewToken => "new-token",
            Self::ListMetadata => "list-metadata",
            Self::Revoke => "revoke",
            Self::Metadata => "metadata",
            Self::Rotate => "rotate",
            Self::IpRestrictionUpdate => "ip-restriction-update",
            Self::PrivilegeUpdate => "privilege-update",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == text)
    }

    /// Whether the action addresses one token by its five points.
    pub(super) fn addresses_a_token(self) -> bool {
        !matches!(self, Self::NewToken | Self::ListMetadata)
    }

    /// The one method the action answers (any other is a 400).
    pub(super) fn method(self) -> &'static str {
        match self {
            Self::ListMetadata => "GET",
            _ => "POST",
        }
    }

    fn operation(self) -> Option<Operation> {
        Some(match self {
            Self::NewToken => Operation::NewToken,
            Self::ListMetadata => return None,
            Self::Revoke => Operation::Revoke,
            Self::Metadata => Operation::Metadata,
            Self::Rotate => Operation::Rotate,
            Self::IpRestrictionUpdate => Operation::IpRestrictionUpdate,
            Self::PrivilegeUpdate => Operation::PrivilegeUpdate,
        })
    }
}

/// Body of `new-token`. Unknown fields are ignored (SPEC A7).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct NewTokenRequest {
    privilege: Privilege,
    /// 1–50 characters, no control characters.
    #[schema(schema_with = crate::http::openapi::schemas::token_name)]
    name: String,
    /// 2–10 letters, digits or `-` (`_` is refused with riavzon's reason); `api` when absent.
    #[schema(min_length = 2, max_length = 10)]
    prefix: Option<String>,
    #[schema(schema_with = crate::http::openapi::schemas::bff_ip_list)]
    ipv4: Option<IpList>,
    /// Lifetime in ms; `null` or absent = never expires.
    #[schema(schema_with = crate::http::openapi::schemas::lifetime_ms)]
    expires: Option<u64>,
}

/// Body of the actions that address one token by its five points. Unknown fields are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct TokenActionRequest {
    token_id: TokenId,
    /// Exactly 137 characters.
    #[schema(min_length = 137, max_length = 137)]
    public_identifier: String,
    /// 1–50 characters.
    #[schema(schema_with = crate::http::openapi::schemas::token_name)]
    name: String,
    /// `ip-restriction-update`: the new list (absent = no restriction).
    #[schema(schema_with = crate::http::openapi::schemas::bff_ip_list)]
    ipv4: Option<IpList>,
    /// `privilege-update`: required.
    new_privilege: Option<Privilege>,
}

/// `tokenId` as a JSON number or a numeric string.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum TokenId {
    Number(u64),
    Text(String),
}

impl TokenId {
    fn value(&self) -> Option<u64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse().ok()
            }
            Self::Text(_) => None,
        }
    }
}

/// `ipv4`: a list of addresses/ranges, or one as a bare string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum IpList {
    Many(Vec<String>),
    One(String),
}

impl IpList {
    fn parse(list: Option<&Self>) -> Option<IpRestriction> {
        match list {
            None => Some(IpRestriction::unrestricted()),
            Some(Self::Many(entries)) => IpRestriction::parse(entries).ok(),
            Some(Self::One(entry)) => IpRestriction::parse(&[entry]).ok(),
        }
    }
}

/// Authenticate → action → union limiter → method and body → operation limiter → operation
/// → reset of the union after a success (SPEC A7, A8).
pub async fn manage(
    User(user_id): User,
    req: HttpRequest,
    action: Path<String>,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let bad_request = || ApiError::bad_request(now);
    let Some(action) = Action::parse(&action) else {
        return Err(ApiError::unknown_action(now));
    };
    let limits = &state.limits;
    let ip = ip_key(client_ip(&req, &state.trusted_proxies));
    enforce(
        limits,
        limits.management(&ip, action == Action::ListMetadata).await,
    )
    .await?;
    if req.method().as_str() != action.method() {
        return Err(bad_request());
    }
    let tokens = &state.tokens.acting_as(Actor::user(user_id));
    let Some(operation) = action.operation() else {
        return Ok(respond(action, tokens.list_valid_tokens(user_id).await));
    };
    let read = |payload| async {
        json_body::<serde_json::Value>(&req, payload, MANAGE_BODY_LIMIT, state.body_timeout)
            .await
            .map_err(|err| match err {
                BodyError::TimedOut { .. } => ApiError::RequestTimeout,
                BodyError::NotJson | BodyError::Empty => ApiError::NotAllowed,
                BodyError::TooLarge { limit } => ApiError::PayloadTooLarge { limit },
                BodyError::Shape { .. } => bad_request(),
            })
    };
    let body = read(payload).await?;
    let response = if action == Action::NewToken {
        let create = parse_new_token(user_id, body).ok_or_else(bad_request)?;
        enforce(limits, limits.operation(operation, &ip, user_id).await).await?;
        match create {
            Ok(create) => respond(action, tokens.create(create).await),
            Err(reason) => respond::<()>(action, Results::failure(now, reason)),
        }
    } else {
        let (token_id, public_id, name, manager_action) =
            parse_token_action(action, body).ok_or_else(bad_request)?;
        enforce(limits, limits.operation(operation, &ip, user_id).await).await?;
        let result = tokens
            .private_action_manager(user_id, token_id, &public_id, &name, manager_action)
            .await;
        respond(action, result)
    };
    if response.status().is_success() {
        limits.management_succeeded(&ip).await;
    }
    Ok(response)
}

/// `None`: a body of the wrong shape. `Some(Err(reason))`: well-formed but refused with
/// riavzon's reason, answered in the envelope after the operation limiter has counted it.
fn parse_new_token(
    user_id: UserId,
    body: serde_json::Value,
) -> Option<Result<CreateToken, Reason>> {
    let request: NewTokenRequest = serde_json::from_value(body).ok()?;
    let name = TokenName::parse(&request.name).ok()?;
    let prefix = match request.prefix {
        None => Prefix::default(),
        Some(prefix) if (2..=10).contains(&prefix.chars().count()) => {
            match Prefix::parse(&prefix) {
                Ok(prefix) => prefix,
                Err(PrefixError::ReservedUnderscore) => return Some(Err(Reason::ReservedPrefix)),
                Err(PrefixError::Invalid) => return None,
            }
        }
        Some(_) => return None,
    };
    let lifetime = request.expires.map(Lifetime::from_ms).transpose().ok()?;
    let ips = IpList::parse(request.ipv4.as_ref())?;
    Some(Ok(CreateToken::new(user_id, request.privilege, name)
        .prefix(prefix)
        .lifetime(lifetime)
        .ips(ips)))
}

fn parse_token_action(
    action: Action,
    body: serde_json::Value,
) -> Option<(u64, PublicIdentifier, String, ManagerAction)> {
    let request: TokenActionRequest = serde_json::from_value(body).ok()?;
    let token_id = request.token_id.value()?;
    let public_id = PublicIdentifier::parse_shape(&request.public_identifier).ok()?;
    let name = TokenName::parse(&request.name).ok()?;
    let manager_action = match action {
        Action::Revoke => ManagerAction::Revoke,
        Action::Metadata => ManagerAction::Metadata,
        Action::Rotate => ManagerAction::Rotate,
        Action::IpRestrictionUpdate => ManagerAction::IpRestrictionUpdate {
            new_ip_address: IpList::parse(request.ipv4.as_ref())?,
        },
        Action::PrivilegeUpdate => ManagerAction::PrivilegeUpdate {
            new_privileges: request.new_privilege?,
        },
        Action::NewToken | Action::ListMetadata => return None,
    };
    Some((
        token_id,
        public_id,
        name.as_str().to_owned(),
        manager_action,
    ))
}

fn respond<T: serde::Serialize>(action: Action, result: Results<T>) -> HttpResponse {
    let status = if result.is_ok() {
        action.success_status()
    } else {
        action.failure_status()
    };
    json(status, &result)
}
