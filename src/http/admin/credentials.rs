//! `/api/admin/credentials`: stored admin credentials (SPEC B9). The secret is answered once,
//! by the creation; no answer after it holds it.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

use super::body;
use super::views::{CredentialCreatedView, CredentialView, CredentialsView};
use crate::admins::{Caller, CreateCredential, ManageError};
use crate::domain::access::scope::{ScopeError, ScopeList};
use crate::domain::credential::{CredentialChange, CredentialName};
use crate::domain::{Lifetime, LifetimeError};
use crate::http::error::AdminFailure;
use crate::http::response::json;
use crate::http::{Admin, ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateCredentialRequest {
    /// 1 to 64 characters.
    #[schema(min_length = 1, max_length = 64, example = "billing job")]
    name: String,
    /// Scope grants (SPEC B4 grammar over the admin catalogue: `tokens.read`, `tokens.*`,
    /// `*.read`, `*`); give `scopes` or `preset`.
    #[schema(example = json!(["tokens.read", "quotas.*"]))]
    scopes: Option<Vec<String>>,
    /// `root`, `read-only`, `support`, `billing` or `verifier`.
    #[schema(example = "support")]
    preset: Option<String>,
    /// Lifetime in ms from now (as a token's); absent: it does not expire.
    #[schema(minimum = 1, example = 7_776_000_000_i64)]
    expires: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateCredentialRequest {
    #[schema(min_length = 1, max_length = 64)]
    name: Option<String>,
    /// Replaces its scope grants.
    scopes: Option<Vec<String>>,
    /// A new lifetime in ms from now; `null` removes the expiry; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1)]
    expires: Option<Option<i64>>,
}

/// A field that is present, `null` or not: `Some(None)` for `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

fn name(text: &str) -> Result<CredentialName, AdminFailure> {
    CredentialName::parse(text)
        .map_err(|err| AdminFailure::invalid("invalid_name", err.to_string()).field("name"))
}

fn scope_failure(err: &ScopeError) -> AdminFailure {
    AdminFailure::invalid("invalid_scope", err.to_string()).field(err.field())
}

/// `expires` ms from `now`: in the future, at most 100 years.
fn expiry(ms: i64, now: DateTime<Utc>) -> Result<DateTime<Utc>, AdminFailure> {
    u64::try_from(ms)
        .map_err(|_| LifetimeError)
        .and_then(Lifetime::from_ms)
        .map(|lifetime| lifetime.expiry_from(now))
        .map_err(|err| AdminFailure::invalid("invalid_expiry", err.to_string()).field("expires"))
}

fn failure(state: &AppState, err: ManageError, id: Option<u64>) -> AdminFailure {
    match err {
        ManageError::Forbidden(scope) => AdminFailure::forbidden(scope),
        ManageError::NotFound => no_credential(id.unwrap_or_default()),
        ManageError::Revoked => AdminFailure::new(
            StatusCode::CONFLICT,
            "credential_revoked",
            format!(
                "credential {} is revoked; it stays as it was, for the audit trail",
                id.unwrap_or_default()
            ),
        ),
        ManageError::Store(err) => {
            AdminFailure::unavailable(&state.metrics, "admin-credentials", &err)
        }
    }
}

fn no_credential(id: u64) -> AdminFailure {
    AdminFailure::not_found(format!("no credential with id {id}"))
}

/// A credential id from the path; anything else names no credential.
fn credential_id(raw: &str) -> Result<u64, AdminFailure> {
    raw.parse()
        .map_err(|_| AdminFailure::not_found(format!("no credential with id {raw:?}")))
}

/// `POST /api/admin/credentials`: 201 with the credential and its secret (shown once).
pub async fn create(
    Admin(actor, held): Admin,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: CreateCredentialRequest = body(&req, payload).await?;
    let caller = Caller {
        actor,
        scopes: held,
    };
    let view = create_as(&state, &caller, &request).await?;
    Ok(json(StatusCode::CREATED, &view))
}

/// A creation by `caller` (the admin API's and the console's): the secret, shown once, and the
/// credential; a refusal names the field at fault.
pub(crate) async fn create_as(
    state: &AppState,
    caller: &Caller,
    request: &CreateCredentialRequest,
) -> Result<CredentialCreatedView, AdminFailure> {
    let name = name(&request.name)?;
    let scopes = match (&request.scopes, &request.preset) {
        (Some(_), Some(_)) => {
            return Err(
                AdminFailure::invalid("invalid_scope", "give scopes or preset, not both")
                    .field("preset"),
            )
        }
        (Some(scopes), None) => ScopeList::parse(scopes),
        (None, Some(preset)) => ScopeList::preset(preset),
        (None, None) => Err(ScopeError::Empty),
    }
    .map_err(|err| scope_failure(&err))?;
    let now = state.clock.now();
    let expires_at = request.expires.map(|ms| expiry(ms, now)).transpose()?;
    let request = CreateCredential {
        name,
        scopes,
        expires_at,
    };
    let (record, secret) = state
        .admins
        .create(caller, request)
        .await
        .map_err(|err| failure(state, err, None))?;
    Ok(CredentialCreatedView {
        secret: secret.expose().to_owned(),
        credential: CredentialView::new(record, now),
    })
}

/// `GET /api/admin/credentials`: every credential, revoked ones included, oldest first.
pub async fn list(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let records = state
        .admins
        .credentials()
        .await
        .map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-credentials", &err))?;
    let now = state.clock.now();
    let credentials = records
        .into_iter()
        .map(|record| CredentialView::new(record, now))
        .collect();
    Ok(json(StatusCode::OK, &CredentialsView { credentials }))
}

/// `GET /api/admin/credentials/{id}`.
pub async fn get(id: Path<String>, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = credential_id(&id)?;
    let record = state
        .admins
        .credential(id)
        .await
        .map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-credentials", &err))?;
    let record = record.ok_or_else(|| no_credential(id))?;
    Ok(json(
        StatusCode::OK,
        &CredentialView::new(record, state.clock.now()),
    ))
}

/// `PATCH /api/admin/credentials/{id}`: 200 with the credential as it is now.
pub async fn update(
    Admin(actor, scopes): Admin,
    id: Path<String>,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = credential_id(&id)?;
    let request: UpdateCredentialRequest = body(&req, payload).await?;
    let now = state.clock.now();
    let change = CredentialChange {
        name: request.name.as_deref().map(name).transpose()?,
        scopes: match &request.scopes {
            Some(scopes) => Some(ScopeList::parse(scopes).map_err(|err| scope_failure(&err))?),
            None => None,
        },
        expires_at: match request.expires {
            Some(Some(ms)) => Some(Some(expiry(ms, now)?)),
            Some(None) => Some(None),
            None => None,
        },
    };
    if change.is_empty() {
        return Err(AdminFailure::bad_request("give name, scopes or expires to change").into());
    }
    let record = state
        .admins
        .change(&Caller { actor, scopes }, id, &change)
        .await
        .map_err(|err| failure(&state, err, Some(id)))?;
    Ok(json(StatusCode::OK, &CredentialView::new(record, now)))
}

/// `DELETE /api/admin/credentials/{id}`: revokes it; 200 with it, `revokedAt` set.
pub async fn revoke(
    Admin(actor, scopes): Admin,
    id: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = credential_id(&id)?;
    let record = state
        .admins
        .revoke(&Caller { actor, scopes }, id)
        .await
        .map_err(|err| failure(&state, err, Some(id)))?;
    Ok(json(
        StatusCode::OK,
        &CredentialView::new(record, state.clock.now()),
    ))
}
