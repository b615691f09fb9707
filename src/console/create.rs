//! A new token from the console (`tokens.create`): the admin API's own creation, its
//! refusals shown next to the field they name, and the key shown once.

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{json, Map, Value};

use super::form::FormErrors;
use super::pages::{html, Layout};
use super::session::{forbidden, scoped_form, signed};
use super::token::{secret_page, SecretPage};
use crate::admins::Signed;
use crate::http::{create_token_as, AppState, CreateTokenRequest};

/// The form as typed.
#[derive(Default)]
pub struct NewTokenForm {
    pub user_id: String,
    pub name: String,
    pub privilege: String,
    pub roles: String,
    pub metadata: String,
}

#[derive(Template)]
#[template(path = "console/new_token.html")]
pub struct NewTokenPage {
    pub layout: Layout,
    pub form: NewTokenForm,
    pub errors: FormErrors,
    pub privileges: [&'static str; 5],
}

fn form_page(
    signed: &Signed,
    form: NewTokenForm,
    errors: FormErrors,
    status: StatusCode,
) -> HttpResponse {
    let page = NewTokenPage {
        layout: Layout::signed("New token", signed, "/console/tokens"),
        form,
        errors,
        privileges: ["demo", "restricted", "protected", "full", "custom"],
    };
    html(status, &page)
}

pub async fn new(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    let signed = match signed(&req, &state).await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    if !signed.caller.scopes.allows("tokens.create") {
        return forbidden(&signed, "tokens.create");
    }
    let form = NewTokenForm {
        privilege: "full".into(),
        ..NewTokenForm::default()
    };
    form_page(&signed, form, FormErrors::default(), StatusCode::OK)
}

/// The admin API's request from the form; a field that is not even of the right kind is named.
fn request_of(form: &NewTokenForm) -> Result<CreateTokenRequest, FormErrors> {
    let refuse = |field: &'static str, message: &str| FormErrors(vec![(field, message.to_owned())]);
    let user_id = match form.user_id.trim().parse::<u64>() {
        Ok(id) => json!(id),
        Err(_) => json!(form.user_id.trim()),
    };
    let roles: Vec<&str> = form
        .roles
        .split(',')
        .map(str::trim)
        .filter(|role| !role.is_empty())
        .collect();
    let mut body = Map::new();
    body.insert("userId".into(), user_id);
    body.insert("name".into(), json!(form.name.trim()));
    body.insert("privilege".into(), json!(form.privilege));
    body.insert("roles".into(), json!(roles));
    if !form.metadata.trim().is_empty() {
        let metadata: Value = serde_json::from_str(&form.metadata)
            .map_err(|_| refuse("metadata", "metadata must be a JSON object"))?;
        body.insert("metadata".into(), metadata);
    }
    serde_json::from_value(Value::Object(body)).map_err(|_| {
        refuse(
            "privilege",
            "privilege is demo, restricted, protected, full or custom",
        )
    })
}

pub async fn create(req: HttpRequest, state: Data<AppState>, body: Bytes) -> HttpResponse {
    let (signed, fields) = match scoped_form(&req, &state, &body, "tokens.create").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let text = |name: &str| fields.get(name).cloned().unwrap_or_default();
    let form = NewTokenForm {
        user_id: text("userId"),
        name: text("name"),
        privilege: text("privilege"),
        roles: text("roles"),
        metadata: text("metadata"),
    };
    let request = match request_of(&form) {
        Ok(request) => request,
        Err(errors) => return form_page(&signed, form, errors, StatusCode::BAD_REQUEST),
    };
    match create_token_as(&state, signed.caller.actor.clone(), &request).await {
        Ok(created) => {
            let page = SecretPage {
                layout: Layout::signed("Token created", &signed, "/console/tokens"),
                heading: format!("Token {} created", created.token.id),
                token_id: created.token.id,
                secret: created.raw_api_key,
                detail: format!("It belongs to owner {}.", created.token.user_id.get()),
            };
            secret_page(&page)
        }
        Err(failure) => {
            // The admin API's own message, next to the field it names.
            let field = match failure.field.as_deref() {
                Some("userId") => "userId",
                Some("name") => "name",
                Some(field) if field.starts_with("roles") => "roles",
                Some(field) if field.starts_with("metadata") => "metadata",
                _ => "form",
            };
            let status = failure.status;
            let errors = FormErrors(vec![(field, failure.message)]);
            form_page(&signed, form, errors, status)
        }
    }
}
