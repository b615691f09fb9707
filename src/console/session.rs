//! Signing in and out, and the guard of every page: the session cookie (HttpOnly,
//! `SameSite=Strict`, `Secure` over HTTPS), the CSRF token every form carries, and the refusal
//! of a POST from another origin.

use std::collections::HashMap;

use actix_web::http::header::{HeaderValue, LOCATION, SET_COOKIE};
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use subtle::ConstantTimeEq;

use super::pages::{html, not_found_in, Layout, ProblemPage, SignInPage};
use crate::admins::{Refusal, SessionRefusal, Signed};
use crate::domain::random_secret_hex;
use crate::http::{client_ip, AppState};

/// The session's cookie; its value is 64 hex characters, stored only as a digest.
const COOKIE: &str = "iam_console";
/// The sign-in form's CSRF token, before there is a session (double submit).
const SIGN_IN_COOKIE: &str = "iam_console_sign_in";
/// The most a console form may hold.
const MAX_FORM: usize = 16 * 1024;

/// A cookie's value from the `Cookie` header.
fn cookie<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all("cookie")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether the browser reached us over HTTPS (directly, or as a trusted proxy says).
fn over_https(req: &HttpRequest, state: &AppState) -> bool {
    let peer_trusted = req
        .peer_addr()
        .map(|peer| crate::domain::ip::normalize(peer.ip()))
        .is_some_and(|peer| state.trusted_proxies.iter().any(|net| net.contains(&peer)));
    let forwarded = peer_trusted
        && req
            .headers()
            .get("x-forwarded-proto")
            .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
    req.uri().scheme_str() == Some("https") || forwarded
}

/// `Set-Cookie` for `name`; `None` clears it.
fn set_cookie(req: &HttpRequest, state: &AppState, name: &str, value: Option<&str>) -> HeaderValue {
    let secure = if over_https(req, state) {
        "; Secure"
    } else {
        ""
    };
    let text = match value {
        Some(value) => format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{name}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(""))
}

/// 303 to `to`.
fn see_other(to: &'static str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, to))
        .finish()
}

/// To the sign-in page, the session cookie cleared.
fn to_sign_in(req: &HttpRequest, state: &AppState) -> HttpResponse {
    let mut answer = see_other("/console/sign-in");
    let clear = set_cookie(req, state, COOKIE, None);
    answer.headers_mut().append(SET_COOKIE, clear);
    answer
}

/// The store cannot answer: a page that says so (503).
pub fn unavailable(layout: Layout) -> HttpResponse {
    let page = ProblemPage {
        layout,
        heading: "The store is unavailable".into(),
        detail: "The token store did not answer. Try again in a moment.".into(),
    };
    html(StatusCode::SERVICE_UNAVAILABLE, &page)
}

/// 503 for someone signed in, in the layout of the page they were on (`current`).
pub fn store_down(signed: &Signed, current: &str) -> HttpResponse {
    unavailable(Layout::signed("Unavailable", signed, current))
}

/// The signed-in session of a page request, or the answer to give instead (to the sign-in
/// page; 503 when the store cannot say).
pub async fn signed(req: &HttpRequest, state: &AppState) -> Result<Signed, HttpResponse> {
    let Some(value) = cookie(req, COOKIE) else {
        return Err(see_other("/console/sign-in"));
    };
    let ip = client_ip(req, &state.trusted_proxies);
    match state.admins.session(value, state.console_limits, ip).await {
        Ok(signed) => Ok(signed),
        Err(SessionRefusal::Gone) => Err(to_sign_in(req, state)),
        Err(SessionRefusal::Unavailable(err)) => {
            tracing::error!(error = %err, "console: the session could not be read");
            Err(unavailable(Layout::anonymous("Unavailable")))
        }
    }
}

/// 403 in the layout: the credential lacks `scope` (what it cannot do is not shown either; a
/// request for it anyway gets this).
pub fn forbidden(signed: &Signed, scope: &str) -> HttpResponse {
    let page = ProblemPage {
        layout: Layout::signed("Not allowed", signed, ""),
        heading: "Not allowed".into(),
        detail: format!("This credential does not hold the scope {scope}."),
    };
    html(StatusCode::FORBIDDEN, &page)
}

/// A form POSTed by a page of ours: from our own origin (when the browser says), with the
/// expected CSRF token. Anything else is 403 and changes nothing.
fn form_is_ours(req: &HttpRequest, form: &HashMap<String, String>, expected: &str) -> bool {
    let host = req
        .headers()
        .get("host")
        .and_then(|host| host.to_str().ok())
        .unwrap_or_default();
    let same_origin = match req.headers().get("origin").map(HeaderValue::to_str) {
        None => true,
        Some(Ok(origin)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        Some(Err(_)) => false,
    };
    let same_site = match req
        .headers()
        .get("sec-fetch-site")
        .map(HeaderValue::as_bytes)
    {
        None | Some(b"same-origin") | Some(b"none") => true,
        Some(_) => false,
    };
    let token = form.get("csrf").map(String::as_str).unwrap_or_default();
    let token_ok = !expected.is_empty() && bool::from(token.as_bytes().ct_eq(expected.as_bytes()));
    same_origin && same_site && token_ok
}

/// A form body (`application/x-www-form-urlencoded`, at most 16 KiB); `None` otherwise.
pub fn form(body: &Bytes) -> Option<HashMap<String, String>> {
    if body.len() > MAX_FORM {
        return None;
    }
    Some(form_urlencoded::parse(body).into_owned().collect())
}

/// 403 for a form that is not ours (no or wrong CSRF token, another origin).
fn refused_form(layout: Layout) -> HttpResponse {
    let page = ProblemPage {
        layout,
        heading: "Request refused".into(),
        detail: "This form was not sent from this console (its CSRF token is missing or wrong, \
                 or it came from another site). Reload the page and try again."
            .into(),
    };
    html(StatusCode::FORBIDDEN, &page)
}

/// A POST of a signed-in page: the session, when the form is ours; else the 403 (or the
/// sign-in page) to answer.
pub async fn signed_form(
    req: &HttpRequest,
    state: &AppState,
    body: &Bytes,
) -> Result<(Signed, HashMap<String, String>), HttpResponse> {
    let signed = signed(req, state).await?;
    match form(body) {
        Some(form) if form_is_ours(req, &form, &signed.session.csrf) => Ok((signed, form)),
        _ => Err(refused_form(Layout::signed("Refused", &signed, ""))),
    }
}

/// A POST of a signed-in page that needs `scope`: the session and the form, or the answer to
/// give instead. Every console action that needs a scope comes through here, so each is checked
/// server side whatever the page showed (403 without it).
pub async fn scoped_form(
    req: &HttpRequest,
    state: &AppState,
    body: &Bytes,
    scope: &'static str,
) -> Result<(Signed, HashMap<String, String>), HttpResponse> {
    let (signed, form) = signed_form(req, state, body).await?;
    match signed.caller.scopes.allows(scope) {
        true => Ok((signed, form)),
        false => Err(forbidden(&signed, scope)),
    }
}

/// `/console`: the tokens, or the sign-in page.
pub async fn home(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    match signed(&req, &state).await {
        Ok(_) => see_other("/console/tokens"),
        Err(answer) => answer,
    }
}

/// The sign-in form, with a fresh CSRF token in its own cookie.
fn sign_in_form(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let csrf = random_secret_hex();
    let page = SignInPage {
        layout: Layout::anonymous("Sign in"),
        csrf: csrf.clone(),
        error,
    };
    let mut answer = html(status, &page);
    let cookie = set_cookie(req, state, SIGN_IN_COOKIE, Some(&csrf));
    answer.headers_mut().append(SET_COOKIE, cookie);
    answer
}

pub async fn sign_in_page(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    if signed(&req, &state).await.is_ok() {
        return see_other("/console/tokens");
    }
    sign_in_form(&req, &state, StatusCode::OK, None)
}

/// Opens a session for the secret sent; a wrong one is said next to the field (401).
pub async fn sign_in(req: HttpRequest, state: Data<AppState>, body: Bytes) -> HttpResponse {
    let expected = cookie(&req, SIGN_IN_COOKIE).unwrap_or_default().to_owned();
    let Some(form) = form(&body).filter(|form| form_is_ours(&req, form, &expected)) else {
        return refused_form(Layout::anonymous("Refused"));
    };
    let secret = form.get("secret").map(String::as_str).unwrap_or_default();
    if secret.is_empty() {
        let error = Some("Enter an admin secret.".to_owned());
        return sign_in_form(&req, &state, StatusCode::BAD_REQUEST, error);
    }
    let ip = client_ip(&req, &state.trusted_proxies);
    match state.admins.sign_in(secret, ip).await {
        Ok((value, _)) => {
            let mut answer = see_other("/console/tokens");
            let headers = answer.headers_mut();
            headers.append(SET_COOKIE, set_cookie(&req, &state, COOKIE, Some(&value)));
            headers.append(SET_COOKIE, set_cookie(&req, &state, SIGN_IN_COOKIE, None));
            answer
        }
        Err(Refusal::Unauthorized) => {
            tracing::warn!(ip = ?ip, "console: a sign-in with a secret that is no admin credential");
            let error = Some("This secret is not a valid admin credential.".to_owned());
            sign_in_form(&req, &state, StatusCode::UNAUTHORIZED, error)
        }
        Err(Refusal::Unavailable(err)) => {
            tracing::error!(error = %err, "console: sign-in could not reach the store");
            unavailable(Layout::anonymous("Unavailable"))
        }
    }
}

/// Ends the session (its row deleted: the cookie names nothing any more).
pub async fn sign_out(req: HttpRequest, state: Data<AppState>, body: Bytes) -> HttpResponse {
    let (_, _) = match signed_form(&req, &state, &body).await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let value = cookie(&req, COOKIE).unwrap_or_default();
    if let Err(err) = state.admins.sign_out(value).await {
        tracing::error!(error = %err, "console: sign-out could not reach the store");
        return unavailable(Layout::anonymous("Unavailable"));
    }
    to_sign_in(&req, &state)
}

/// A page that does not exist: 404 in the layout.
pub async fn not_found(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    let layout = match signed(&req, &state).await {
        Ok(signed) => Layout::signed("Not found", &signed, ""),
        Err(_) => Layout::anonymous("Not found"),
    };
    not_found_in(
        layout,
        format!("There is no console page at {}.", req.path()),
    )
}
