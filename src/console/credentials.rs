//! Admin credentials (`credentials.read`, `credentials.write`): the list with scopes and last
//! use, a new credential through the admin API's own creation (its secret shown once), and
//! revocation, which also ends that credential's console sessions.

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{json, Map, Value};

use super::form::FormErrors;
use super::pages::{html, when, when_or, Layout};
use super::session::{forbidden, scoped_form, signed, store_down, unavailable};
use crate::admins::{ManageError, Signed};
use crate::http::{create_credential_as, AppState, CreateCredentialRequest};

pub struct CredentialRow {
    pub id: u64,
    pub name: String,
    pub scopes: String,
    pub created: String,
    pub created_by: String,
    pub expires: String,
    pub last_used: String,
    pub active: bool,
}

/// The form as typed.
#[derive(Default)]
pub struct CredentialForm {
    pub name: String,
    pub scopes: String,
}

#[derive(Template)]
#[template(path = "console/credentials.html")]
pub struct CredentialsPage {
    pub layout: Layout,
    pub rows: Vec<CredentialRow>,
    pub can_write: bool,
    pub form: CredentialForm,
    pub errors: FormErrors,
    /// The secret of the credential just created: shown once, on the answer to the form.
    pub secret: Option<String>,
}

async fn page(
    state: &AppState,
    signed: &Signed,
    form: CredentialForm,
    errors: FormErrors,
    secret: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let layout = Layout::signed("Credentials", signed, "/console/credentials");
    let records = match state.admins.credentials().await {
        Ok(records) => records,
        Err(err) => {
            tracing::error!(error = %err, "console: the credentials could not be read");
            return unavailable(layout);
        }
    };
    let now = state.clock.now();
    let rows = records
        .into_iter()
        .rev()
        .map(|record| CredentialRow {
            id: record.id,
            active: record.is_active_at(now),
            name: record.name.clone(),
            scopes: record.scopes.texts().join(", "),
            created: when(record.created_at, now),
            created_by: record.created_by.to_string(),
            expires: when_or(record.expires_at, now, "never"),
            last_used: when_or(record.last_used_at, now, "never"),
        })
        .collect();
    let page = CredentialsPage {
        layout,
        rows,
        can_write: signed.caller.scopes.allows("credentials.write"),
        form,
        errors,
        secret,
    };
    html(status, &page)
}

pub async fn list(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    let signed = match signed(&req, &state).await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    if !signed.caller.scopes.allows("credentials.read") {
        return forbidden(&signed, "credentials.read");
    }
    let form = CredentialForm::default();
    page(
        &state,
        &signed,
        form,
        FormErrors::default(),
        None,
        StatusCode::OK,
    )
    .await
}

pub async fn create(req: HttpRequest, state: Data<AppState>, body: Bytes) -> HttpResponse {
    let (signed, fields) = match scoped_form(&req, &state, &body, "credentials.write").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let form = CredentialForm {
        name: fields.get("name").cloned().unwrap_or_default(),
        scopes: fields.get("scopes").cloned().unwrap_or_default(),
    };
    let scopes: Vec<&str> = form
        .scopes
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|scope| !scope.is_empty())
        .collect();
    let mut body = Map::new();
    body.insert("name".into(), json!(form.name.trim()));
    body.insert("scopes".into(), json!(scopes));
    let request: CreateCredentialRequest = match serde_json::from_value(Value::Object(body)) {
        Ok(request) => request,
        Err(_) => {
            let errors = FormErrors(vec![("name", "Give a name and scopes.".to_owned())]);
            return page(&state, &signed, form, errors, None, StatusCode::BAD_REQUEST).await;
        }
    };
    match create_credential_as(&state, &signed.caller, &request).await {
        Ok(created) => {
            let form = CredentialForm::default();
            let (errors, status) = (FormErrors::default(), StatusCode::OK);
            page(&state, &signed, form, errors, Some(created.secret), status).await
        }
        Err(failure) => {
            let field = match failure.field.as_deref() {
                Some("name") => "name",
                _ => "scopes",
            };
            let status = failure.status;
            let errors = FormErrors(vec![(field, failure.message)]);
            page(&state, &signed, form, errors, None, status).await
        }
    }
}

/// `POST /console/credentials/{id}/revoke`: as the admin API's revocation (never a credential
/// holding a scope the caller lacks).
pub async fn revoke(
    req: HttpRequest,
    state: Data<AppState>,
    id: Path<u64>,
    body: Bytes,
) -> HttpResponse {
    let (signed, _) = match scoped_form(&req, &state, &body, "credentials.write").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let message = match state.admins.revoke(&signed.caller, id.into_inner()).await {
        Ok(_) => {
            return HttpResponse::SeeOther()
                .insert_header(("location", "/console/credentials"))
                .finish()
        }
        Err(ManageError::Forbidden(scope)) => {
            format!("This credential holds {scope}, which yours does not: it cannot revoke it.")
        }
        Err(ManageError::NotFound) => "There is no such credential.".to_owned(),
        Err(ManageError::Revoked) => "It is revoked already.".to_owned(),
        Err(ManageError::Store(err)) => {
            tracing::error!(error = %err, "console: the credential could not be revoked");
            return store_down(&signed, "/console/credentials");
        }
    };
    let errors = FormErrors(vec![("revoke", message)]);
    let form = CredentialForm::default();
    page(&state, &signed, form, errors, None, StatusCode::CONFLICT).await
}
