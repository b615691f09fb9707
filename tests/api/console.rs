//! The admin console over HTTP (SPEC B14), as a browser without script would use it: sign-in,
//! the session cookie and its limits, CSRF and origin checks on every form, scopes, the tokens
//! pages, and the pages' security headers. (The real-browser suite comes with the console's
//! actions.)

use std::time::Duration;

use mysql_async::Params;
use reqwest::header::HeaderMap;
use reqwest::redirect::Policy;
use reqwest::{Client, Method};
use serde_json::json;

use crate::admin_credentials::stored;
use crate::helpers::{spawn_admin_app, spawn_admin_app_with, TestApp, ADMIN_SECRET};

/// The length of a public identifier.
const PUBLIC_ID_LEN: usize = 137;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What a browser got: status, headers, the page.
#[derive(Debug)]
struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    /// The value of cookie `name` set by this answer (`Some("")` when it is cleared).
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(|v| {
                v[name.len() + 1..]
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
    }

    fn set_cookie_line(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The value of the hidden `csrf` field of the page's (first) form with one.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field");
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').expect("end of value")].to_owned()
    }
}

/// A browser: no redirects followed, cookies kept by hand.
struct Browser<'a> {
    app: &'a TestApp,
    client: Client,
    cookies: Vec<(String, String)>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        let client = Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("client");
        Self {
            app,
            client,
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match self.cookies.is_empty() {
            true => request,
            false => request.header("cookie", self.cookie_header()),
        };
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.expect("body");
        let page = Page {
            status,
            headers,
            body,
        };
        for name in ["iam_console", "iam_console_sign_in"] {
            if let Some(value) = page.set_cookie(name) {
                self.cookies.retain(|(known, _)| known != name);
                if !value.is_empty() {
                    self.cookies.push((name.to_owned(), value));
                }
            }
        }
        page
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(self.app.url(path));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.client.post(self.app.url(path)).form(form);
        self.send(request).await
    }

    /// Signs in with `secret` through the form; the answer to the POST.
    async fn sign_in(&mut self, secret: &str) -> Page {
        let form = self.get("/console/sign-in").await;
        assert_eq!(form.status, 200, "{form:?}");
        let csrf = form.csrf();
        self.post("/console/sign-in", &[("csrf", &csrf), ("secret", secret)])
            .await
    }

    /// Signed in as `secret`, on the tokens page or where the console sent it.
    async fn signed_in(app: &'a TestApp, secret: &str) -> Self {
        let mut browser = Self::new(app);
        let answer = browser.sign_in(secret).await;
        assert_eq!(answer.status, 303, "{answer:?}");
        assert_eq!(answer.location(), Some("/console/tokens"));
        browser
    }
}

async fn session_rows(app: &TestApp) -> u64 {
    let counts: Vec<u64> = app
        .db
        .query("SELECT COUNT(*) FROM console_sessions", Params::Empty)
        .await;
    counts[0]
}

#[tokio::test]
async fn the_console_sends_a_stranger_to_sign_in_with_strict_headers_and_a_csrf_cookie() {
    let app = spawn_admin_app().await;
    let mut browser = Browser::new(&app);
    for path in ["/console", "/console/tokens", "/console/status"] {
        let answer = browser.get(path).await;
        assert_eq!(answer.status, 303, "{path}: {answer:?}");
        assert_eq!(answer.location(), Some("/console/sign-in"), "{path}");
    }
    let page = browser.get("/console/sign-in").await;
    assert_eq!(page.status, 200);
    let header = |name: &str| page.headers.get(name).and_then(|v| v.to_str().ok());
    assert_eq!(header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(header("content-security-policy"), Some(CSP));
    assert_eq!(header("x-frame-options"), Some("DENY"));
    assert_eq!(header("x-content-type-options"), Some("nosniff"));
    assert_eq!(header("referrer-policy"), Some("same-origin"));
    let line = page
        .set_cookie_line("iam_console_sign_in")
        .expect("csrf cookie");
    assert!(
        line.ends_with("; Path=/console; HttpOnly; SameSite=Strict"),
        "{line}"
    );
    assert_eq!(page.set_cookie("iam_console_sign_in").unwrap(), page.csrf());
    assert!(page
        .body
        .contains("<label for=\"secret\">Admin secret</label>"));
    assert!(!page.body.contains("<script>"), "no inline script");
    assert_eq!(session_rows(&app).await, 0);
}

#[tokio::test]
async fn a_wrong_or_empty_secret_is_said_next_to_the_field_and_opens_no_session() {
    let app = spawn_admin_app().await;
    let mut browser = Browser::new(&app);
    let cases = [
        (
            "iam_admin_nope",
            401,
            "This secret is not a valid admin credential.",
        ),
        ("", 400, "Enter an admin secret."),
    ];
    for (secret, status, message) in cases {
        let answer = browser.sign_in(secret).await;
        assert_eq!(answer.status, status, "{secret:?}: {answer:?}");
        assert!(
            answer.body.contains(&format!(
                "<p class=\"error\" id=\"secret-error\">{message}</p>"
            )),
            "{secret:?}: {}",
            answer.body
        );
        assert!(answer.body.contains("aria-invalid=\"true\""));
        assert_eq!(answer.set_cookie("iam_console"), None);
    }
    assert_eq!(session_rows(&app).await, 0);
}

#[tokio::test]
async fn signing_in_opens_a_session_the_pages_use_and_signing_out_ends_it() {
    let app = spawn_admin_app().await;
    app.admin_create(&json!({"userId": 7, "name": "billing", "privilege": "full"}))
        .await;
    let mut browser = Browser::new(&app);
    let answer = browser.sign_in(ADMIN_SECRET).await;
    assert_eq!(answer.status, 303, "{answer:?}");
    assert_eq!(answer.location(), Some("/console/tokens"));
    let line = answer
        .set_cookie_line("iam_console")
        .expect("session cookie");
    assert!(
        line.ends_with("; Path=/console; HttpOnly; SameSite=Strict"),
        "{line}"
    );
    let value = answer.set_cookie("iam_console").unwrap();
    assert_eq!(value.len(), 64, "{value}");
    // Only the cookie's digest is stored.
    let digest = iam_tokens::domain::Digest::of(&value).as_str().to_owned();
    let stored: Vec<u64> = app
        .db
        .query(
            "SELECT COUNT(*) FROM console_sessions WHERE id = ?",
            Params::Positional(vec![digest.into()]),
        )
        .await;
    assert_eq!(stored, [1]);

    let tokens = browser.get("/console/tokens").await;
    assert_eq!(tokens.status, 200, "{tokens:?}");
    assert!(tokens
        .body
        .contains("Signed in as <strong>config:ops</strong>"));
    assert!(tokens.body.contains(">billing</td>"), "{}", tokens.body);

    let csrf = tokens.csrf();
    let out = browser.post("/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303, "{out:?}");
    assert_eq!(out.location(), Some("/console/sign-in"));
    assert_eq!(session_rows(&app).await, 0);
    // The old cookie names nothing any more.
    let mut replay = Browser::new(&app);
    replay.cookies.push(("iam_console".into(), value));
    let again = replay.get("/console/tokens").await;
    assert_eq!(again.status, 303);
    assert_eq!(again.location(), Some("/console/sign-in"));
}

#[tokio::test]
async fn a_form_without_its_csrf_token_or_from_another_site_is_refused_and_changes_nothing() {
    let app = spawn_admin_app().await;
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    let csrf = browser.get("/console/tokens").await.csrf();
    let forged = [
        (vec![], None, None),
        (vec![("csrf", "0".repeat(64))], None, None),
        (
            vec![("csrf", csrf.clone())],
            Some("http://evil.example"),
            None,
        ),
        (vec![("csrf", csrf.clone())], None, Some("cross-site")),
    ];
    for (form, origin, fetch_site) in forged {
        let mut request = browser
            .client
            .post(app.url("/console/sign-out"))
            .form(&form);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = fetch_site {
            request = request.header("sec-fetch-site", site);
        }
        let answer = browser.send(request).await;
        assert_eq!(
            answer.status, 403,
            "{form:?} {origin:?} {fetch_site:?}: {answer:?}"
        );
        assert!(answer.body.contains("Request refused"));
    }
    assert_eq!(session_rows(&app).await, 1, "still signed in");
    assert_eq!(browser.get("/console/tokens").await.status, 200);
    // The sign-in form is checked the same way.
    let mut stranger = Browser::new(&app);
    let answer = stranger
        .post("/console/sign-in", &[("secret", ADMIN_SECRET)])
        .await;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(session_rows(&app).await, 1);
}

#[tokio::test]
async fn revoking_the_credential_ends_its_sessions() {
    let app = spawn_admin_app().await;
    let credential = stored(&app, "support", &["tokens.read"]).await;
    let mut browser = Browser::signed_in(&app, &credential.secret).await;
    let page = browser.get("/console/tokens").await;
    assert_eq!(page.status, 200, "{page:?}");
    let path = format!("/credentials/{}", credential.id);
    let revoked = app.admin_json(Method::DELETE, &path, &json!({})).await;
    assert!(revoked.status < 300, "{revoked:?}");
    let after = browser.get("/console/tokens").await;
    assert_eq!(after.status, 303, "{after:?}");
    assert_eq!(after.location(), Some("/console/sign-in"));
    assert_eq!(session_rows(&app).await, 0);
}

#[tokio::test]
async fn a_session_ends_after_its_idle_time_and_after_its_lifetime() {
    let app = spawn_admin_app().await;
    let mut idle = Browser::signed_in(&app, ADMIN_SECRET).await;
    app.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(idle.get("/console/status").await.status, 200);
    app.clock.advance(Duration::from_secs(30 * 60));
    let answer = idle.get("/console/status").await;
    assert_eq!(answer.status, 303, "idle past 30 min: {answer:?}");

    let mut busy = Browser::signed_in(&app, ADMIN_SECRET).await;
    for _ in 0..23 {
        app.clock.advance(Duration::from_secs(20 * 60));
        assert_eq!(busy.get("/console/status").await.status, 200);
    }
    app.clock.advance(Duration::from_secs(20 * 60));
    let answer = busy.get("/console/status").await;
    assert_eq!(answer.status, 303, "8 h after sign-in: {answer:?}");
}

#[tokio::test]
async fn what_a_credential_s_scopes_forbid_is_neither_shown_nor_served() {
    let app = spawn_admin_app().await;
    let credential = stored(&app, "auditor", &["audit.read"]).await;
    let mut browser = Browser::new(&app);
    let answer = browser.sign_in(&credential.secret).await;
    assert_eq!(answer.status, 303);
    let status = browser.get("/console/status").await;
    assert_eq!(status.status, 200);
    assert!(
        !status.body.contains("href=\"/console/tokens\""),
        "{}",
        status.body
    );
    for path in ["/console/tokens", "/console/tokens/1"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 403, "{path}: {page:?}");
        assert!(page.body.contains("does not hold the scope tokens.read"));
    }
}

#[tokio::test]
async fn the_tokens_page_searches_filters_and_pages_and_escapes_what_it_shows() {
    let app = spawn_admin_app().await;
    let mut ids = Vec::new();
    for n in 0..55 {
        // At most 20 valid tokens an owner: spread over owners 100–105.
        let body = json!({"userId": 100 + n / 10, "name": format!("key-{n}"), "privilege": "full",
            "metadata": {"plan": if n % 2 == 0 { "pro" } else { "free" }}});
        ids.push(app.admin_create(&body).await.id);
    }
    let hostile = app
        .admin_create(&json!({"userId": 8, "name": "<script>alert(1)</script>",
            "privilege": "full", "metadata": {"note": "<b>bold</b>"}}))
        .await;
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;

    let first = browser.get("/console/tokens").await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.body.matches("<tr>").count(),
        51,
        "a header row and 50 tokens"
    );
    assert!(first
        .body
        .contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(!first.body.contains("<script>alert(1)"));
    let next = {
        let at = first.body.find("rel=\"next\"").expect("a next page");
        let start = first.body[..at].rfind("href=\"").unwrap() + 6;
        first.body[start..at - 2].replace("&#38;", "&")
    };
    let second = browser.get(&next).await;
    assert_eq!(second.status, 200, "{next}");
    assert_eq!(
        second.body.matches("<tr>").count(),
        7,
        "the 6 oldest: {next}"
    );
    assert!(second.body.contains(&format!(">{}</a>", ids[0])));

    let owner = browser.get("/console/tokens?q=user%3A8").await;
    assert_eq!(owner.body.matches("<tr>").count(), 2);
    let name = browser.get("/console/tokens?q=key-3").await;
    assert_eq!(name.body.matches("<tr>").count(), 2);
    assert!(name.body.contains(">key-3</td>"));
    let pro = browser.get("/console/tokens?meta=plan%3Dpro").await;
    assert_eq!(pro.body.matches("<tr>").count(), 29, "28 pro tokens");
    let by_id = browser
        .get(&format!("/console/tokens?q={}", hostile.id))
        .await;
    assert_eq!(by_id.status, 303);
    assert_eq!(
        by_id.location(),
        Some(format!("/console/tokens/{}", hostile.id).as_str())
    );

    let public_id = app.admin_get(&format!("/tokens/{}", hostile.id)).await.body
        ["publicIdentifier"]
        .as_str()
        .expect("a public identifier")
        .to_owned();
    let by_public_id = browser.get(&format!("/console/tokens?q={public_id}")).await;
    assert_eq!(by_public_id.status, 200);
    assert_eq!(by_public_id.body.matches("<tr>").count(), 2, "only it");
    assert!(by_public_id.body.contains(&format!(">{}</a>", hostile.id)));
    // The last character of its checksum changed.
    let last = if public_id.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &public_id[..PUBLIC_ID_LEN - 1]);
    let refused = browser.get(&format!("/console/tokens?q={forged}")).await;
    assert_eq!(refused.status, 400);
    assert!(refused
        .body
        .contains("That is no public identifier: its checksum does not match."));

    let bad = browser.get("/console/tokens?meta=nokey&q=user%3Ax").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Write it as key=value."));
    let empty = browser.get("/console/tokens?q=nobody").await;
    assert!(empty.body.contains("No tokens match."));

    let token = browser
        .get(&format!("/console/tokens/{}", hostile.id))
        .await;
    assert_eq!(token.status, 200);
    assert!(
        token.body.contains("&#60;b&#62;bold&#60;/b&#62;"),
        "{}",
        token.body
    );
    assert!(!token.body.contains("<b>bold</b>"));
}

#[tokio::test]
async fn unknown_pages_are_404_in_the_layout_and_a_disabled_console_is_404() {
    let app = spawn_admin_app().await;
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    for path in [
        "/console/nowhere",
        "/console/tokens/999999",
        "/console/tokens/abc",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 404, "{path}: {page:?}");
        assert!(page.body.contains("<h1>Not found</h1>"), "{path}");
        assert!(page.body.contains("Signed in as"), "{path}: in the layout");
    }
    let off = spawn_admin_app_with(|s| s.console.enabled = false).await;
    let mut browser = Browser::new(&off);
    for path in [
        "/console",
        "/console/sign-in",
        "/console/assets/console.css",
    ] {
        let answer = browser.get(path).await;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(
            answer.body,
            r#"{"error":"The page you are looking for doesn't exists"}"#
        );
    }
}

/// The public verify route's status for `key`.
async fn verify_status(app: &TestApp, key: &str) -> u16 {
    app.verify(key, "full").await.status
}

#[tokio::test]
async fn disable_enable_rotate_and_revoke_from_a_token_s_page_act_as_the_signed_in_credential() {
    let app = spawn_admin_app_with(|s| s.usage.flush_interval = Duration::from_secs(3600)).await;
    let token = app
        .admin_create(&json!({"userId": 7, "name": "svc", "privilege": "full"}))
        .await;
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    let path = format!("/console/tokens/{}", token.id);
    let page = browser.get(&path).await;
    assert_eq!(page.status, 200);
    for button in ["id=\"disable\"", "id=\"rotate\"", "id=\"revoke\""] {
        assert!(page.body.contains(button), "{button}");
    }
    let csrf = page.csrf();

    let disabled = browser
        .post(
            &format!("{path}/state"),
            &[
                ("csrf", &csrf),
                ("enabled", "false"),
                ("reason", "chargeback"),
            ],
        )
        .await;
    assert_eq!(disabled.status, 303, "{disabled:?}");
    assert_eq!(
        disabled.location(),
        Some(format!("{path}?done=disabled").as_str())
    );
    assert_eq!(
        verify_status(&app, &token.key).await,
        401,
        "refused while disabled"
    );
    let page = browser.get(&format!("{path}?done=disabled")).await;
    assert!(page
        .body
        .contains("The token is disabled: it no longer verifies."));
    assert!(page.body.contains("id=\"enable\""));
    let enabled = browser
        .post(
            &format!("{path}/state"),
            &[("csrf", &csrf), ("enabled", "true")],
        )
        .await;
    assert_eq!(enabled.status, 303);
    assert_eq!(verify_status(&app, &token.key).await, 200);

    let long = "x".repeat(201);
    let refused = browser
        .post(
            &format!("{path}/state"),
            &[("csrf", &csrf), ("enabled", "false"), ("reason", &long)],
        )
        .await;
    assert_eq!(refused.status, 422, "{refused:?}");
    assert!(refused
        .body
        .contains("<p class=\"error\">a reason is 1 to 200 characters"));
    assert_eq!(
        verify_status(&app, &token.key).await,
        200,
        "nothing changed"
    );

    let rotated = browser
        .post(
            &format!("{path}/rotate"),
            &[("csrf", &csrf), ("grace", "24h")],
        )
        .await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    assert_eq!(
        rotated
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let at = rotated
        .body
        .find("class=\"secret\" value=\"")
        .expect("the new key");
    let rest = &rotated.body[at + "class=\"secret\" value=\"".len()..];
    let new_key = rest[..rest.find('"').unwrap()].to_owned();
    assert!(new_key.starts_with("api_"), "{new_key}");
    assert_eq!(verify_status(&app, &new_key).await, 200, "the new key");
    assert_eq!(
        verify_status(&app, &token.key).await,
        200,
        "the old key, in its grace"
    );
    let again = browser.get(&path).await;
    assert!(!again.body.contains(&new_key), "the key is shown once");

    let unconfirmed = browser
        .post(&format!("{path}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(unconfirmed.status, 422);
    assert!(unconfirmed.body.contains("Tick the box to confirm"));
    assert_eq!(
        verify_status(&app, &token.key).await,
        200,
        "nothing changed"
    );
    let revoked = browser
        .post(
            &format!("{path}/revoke"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(revoked.status, 303);
    assert_eq!(verify_status(&app, &token.key).await, 401);

    let trail = browser.get(&path).await;
    for event in ["disabled", "enabled", "rotated", "revoked"] {
        assert!(
            trail
                .body
                .contains(&format!("<td>{event}</td><td>config:ops</td>")),
            "{event}: {}",
            trail.body
        );
    }
}

#[tokio::test]
async fn a_read_only_credential_sees_no_action_and_a_forged_post_with_its_session_is_refused() {
    let app = spawn_admin_app().await;
    let token = app
        .admin_create(&json!({"userId": 7, "name": "svc", "privilege": "full"}))
        .await;
    let reader = stored(&app, "reader", &["tokens.read"]).await;
    let mut browser = Browser::signed_in(&app, &reader.secret).await;
    let path = format!("/console/tokens/{}", token.id);
    let page = browser.get(&path).await;
    assert_eq!(page.status, 200);
    for hidden in [
        "id=\"disable\"",
        "id=\"rotate\"",
        "id=\"revoke\"",
        "<h2>Actions</h2>",
    ] {
        assert!(!page.body.contains(hidden), "{hidden} shown");
    }
    let csrf = page.csrf();
    for (action, form) in [
        ("state", vec![("csrf", csrf.as_str()), ("enabled", "false")]),
        ("rotate", vec![("csrf", csrf.as_str()), ("grace", "0")]),
        ("revoke", vec![("csrf", csrf.as_str()), ("confirm", "yes")]),
    ] {
        let answer = browser.post(&format!("{path}/{action}"), &form).await;
        assert_eq!(answer.status, 403, "{action}: {answer:?}");
        assert!(answer.body.contains("does not hold the scope"), "{action}");
    }
    assert_eq!(
        verify_status(&app, &token.key).await,
        200,
        "nothing changed"
    );
    assert_eq!(
        app.audit_rows(Some(token.id)).await.len(),
        1,
        "only its creation"
    );
}

#[tokio::test]
async fn the_chart_and_the_list_s_sparkline_count_a_token_s_verifications() {
    let app = spawn_admin_app_with(|s| s.usage.flush_interval = Duration::from_secs(3600)).await;
    let token = app
        .admin_create(&json!({"userId": 7, "name": "svc", "privilege": "full",
            "ratelimits": [{"name": "requests", "limit": 3, "duration": 60000}]}))
        .await;
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    let path = format!("/console/tokens/{}", token.id);
    let before = browser.get(&path).await;
    assert!(
        before.body.contains("<span id=\"valid-count\">0</span>"),
        "{}",
        before.body
    );
    let list = browser.get("/console/tokens").await;
    assert!(
        list.body.contains("<span class=\"count\">0</span>"),
        "{}",
        list.body
    );
    assert!(list
        .body
        .contains("aria-label=\"0 verifications in the last 24 hours, by hour"));
    for _ in 0..5 {
        app.verify(&token.key, "full").await;
    }
    app.tokens.flush_usage().await.expect("flush");
    // The tokens page: the day's count, and its line at the top in the current hour.
    let list = browser.get("/console/tokens").await;
    assert!(
        list.body.contains("<span class=\"count\">5</span>"),
        "{}",
        list.body
    );
    assert!(list
        .body
        .contains("aria-label=\"5 verifications in the last 24 hours, by hour (the busiest: 5)\""));
    assert!(list.body.contains(" 72.0,1.0\"/></svg>"), "{}", list.body);
    for range in ["24h", "7d", "30d"] {
        let page = browser.get(&format!("{path}?range={range}")).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("<svg class=\"chart\""), "{range}");
        assert!(
            page.body.contains("<span id=\"valid-count\">3</span> valid, <span id=\"refused-count\">2</span> refused"),
            "{range}: {}",
            page.body
        );
    }
}

#[tokio::test]
async fn a_token_created_in_the_console_shows_its_key_once_and_bad_values_are_named() {
    let app = spawn_admin_app().await;
    let role = app
        .admin_json(
            Method::POST,
            "/roles",
            &json!({"name": "reader", "permissions": ["reports.read"]}),
        )
        .await;
    assert_eq!(role.status, 201, "{role:?}");
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    let list = browser.get("/console/tokens").await;
    assert!(list.body.contains("id=\"new-token\""));
    let form = browser.get("/console/tokens/new").await;
    assert_eq!(form.status, 200);
    let csrf = form.csrf();
    let bad = [
        (
            vec![("userId", "0"), ("name", "x"), ("privilege", "full")],
            400,
            "userId must be an integer from 1 to 9223372036854775807",
        ),
        (
            vec![("userId", "7"), ("name", ""), ("privilege", "full")],
            400,
            "name",
        ),
        (
            vec![("userId", "7"), ("name", "x"), ("privilege", "root")],
            400,
            "privilege is demo, restricted, protected, full or custom",
        ),
        (
            vec![
                ("userId", "7"),
                ("name", "x"),
                ("privilege", "full"),
                ("roles", "nope"),
            ],
            422,
            "nope",
        ),
        (
            vec![
                ("userId", "7"),
                ("name", "x"),
                ("privilege", "full"),
                ("metadata", "[1"),
            ],
            400,
            "metadata must be a JSON object",
        ),
    ];
    for (fields, status, message) in bad {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields.iter().copied());
        let answer = browser.post("/console/tokens/new", &form).await;
        assert_eq!(answer.status, status, "{fields:?}: {answer:?}");
        assert!(answer.body.contains("<p class=\"error\">"), "{fields:?}");
        assert!(
            answer.body.contains(message),
            "{fields:?}: {message}: {}",
            answer.body
        );
    }
    assert!(app.admin_get("/users/7/tokens").await.body["tokens"]
        .as_array()
        .unwrap()
        .is_empty());

    let created = browser
        .post(
            "/console/tokens/new",
            &[
                ("csrf", csrf.as_str()),
                ("userId", "7"),
                ("name", "billing"),
                ("privilege", "full"),
                ("roles", "reader"),
                ("metadata", "{\"plan\": \"pro\"}"),
            ],
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    assert_eq!(
        created
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let at = created
        .body
        .find("class=\"secret\" value=\"")
        .expect("the key");
    let rest = &created.body[at + "class=\"secret\" value=\"".len()..];
    let key = rest[..rest.find('"').unwrap()].to_owned();
    assert_eq!(verify_status(&app, &key).await, 200);
    let listed = app.admin_get("/users/7/tokens").await;
    let token = &listed.body["tokens"][0];
    assert_eq!(token["roles"], json!(["reader"]));
    assert_eq!(token["metadata"], json!({"plan": "pro"}));
    let page = browser
        .get(&format!("/console/tokens/{}", token["id"]))
        .await;
    assert!(!page.body.contains(&key), "shown once");
    let trail = app.audit_rows(token["id"].as_u64()).await;
    assert_eq!(trail[0].1, "config:ops", "{trail:?}");
}

#[tokio::test]
async fn the_audit_log_filters_as_the_admin_api_does_and_names_a_bad_filter_next_to_it() {
    let app = spawn_admin_app().await;
    let first = app
        .admin_create(&json!({"userId": 7, "name": "one", "privilege": "full"}))
        .await;
    app.admin_create(&json!({"userId": 8, "name": "two", "privilege": "full"}))
        .await;
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    let all = browser.get("/console/audit").await;
    assert_eq!(all.status, 200, "{all:?}");
    assert!(all
        .body
        .contains("href=\"/console/audit\" aria-current=\"page\""));
    assert_eq!(
        all.body
            .matches("<td>created</td><td>config:ops</td>")
            .count(),
        2
    );
    let one = browser
        .get(&format!("/console/audit?tokenId={}&actor=&kind=", first.id))
        .await;
    assert_eq!(
        one.body.matches("<td>created</td>").count(),
        1,
        "{}",
        one.body
    );
    let bad = browser.get("/console/audit?actor=root%3A1").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body
            .contains("<p class=\"error\">actor is &#60;type&#62; or &#60;type&#62;:&#60;id&#62;"),
        "{}",
        bad.body
    );
    let reader = stored(&app, "reader", &["tokens.read"]).await;
    let mut other = Browser::signed_in(&app, &reader.secret).await;
    let tokens = other.get("/console/tokens").await;
    assert!(!tokens.body.contains("href=\"/console/audit\""));
    assert_eq!(other.get("/console/audit").await.status, 403);
}

#[tokio::test]
async fn credentials_are_created_with_their_secret_shown_once_and_revoked_from_the_console() {
    let app = spawn_admin_app().await;
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    let page = browser.get("/console/credentials").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("No stored credentials yet"));
    let csrf = page.csrf();
    let bad = browser
        .post(
            "/console/credentials",
            &[
                ("csrf", &csrf),
                ("name", "support"),
                ("scopes", "tokens.fly"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{bad:?}");
    assert!(bad.body.contains("<p class=\"error\">"), "{}", bad.body);
    assert!(bad.body.contains("tokens.fly"));
    let created = browser
        .post(
            "/console/credentials",
            &[
                ("csrf", &csrf),
                ("name", "support"),
                ("scopes", "tokens.read, audit.read"),
            ],
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    let at = created
        .body
        .find("class=\"secret\" value=\"")
        .expect("the secret");
    let rest = &created.body[at + "class=\"secret\" value=\"".len()..];
    let secret = rest[..rest.find('"').unwrap()].to_owned();
    assert!(secret.starts_with("iam_admin_"), "{secret}");
    assert!(
        created.body.contains("<td>audit.read, tokens.read</td>"),
        "{}",
        created.body
    );
    let again = browser.get("/console/credentials").await;
    assert!(!again.body.contains(&secret), "shown once");

    // The new credential signs in; it may not manage credentials.
    let mut support = Browser::signed_in(&app, &secret).await;
    assert_eq!(support.get("/console/credentials").await.status, 403);
    let id = app.admin_get("/credentials").await.body["credentials"][0]["id"]
        .as_u64()
        .unwrap();
    let revoked = browser
        .post(
            &format!("/console/credentials/{id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(revoked.status, 303, "{revoked:?}");
    let ended = support.get("/console/tokens").await;
    assert_eq!(ended.status, 303, "its session ended");
    assert_eq!(ended.location(), Some("/console/sign-in"));
    let list = browser.get("/console/credentials").await;
    assert!(list.body.contains("inactive"));
}

#[tokio::test]
async fn the_roles_page_lists_each_role_with_its_permissions_and_holders() {
    let app = spawn_admin_app().await;
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    let empty = browser.get("/console/roles").await;
    assert_eq!(empty.status, 200);
    assert!(empty.body.contains("No roles yet."));
    let role = json!({"name": "pro", "description": "<paid>", "permissions": ["projects.*", "billing.read"]});
    assert_eq!(
        app.admin_json(Method::POST, "/roles", &role).await.status,
        201
    );
    app.admin_create(&json!({"userId": 7, "name": "a", "privilege": "full", "roles": ["pro"]}))
        .await;
    let page = browser.get("/console/roles").await;
    assert!(
        page.body.contains(
            "<tr><td>pro</td><td>&#60;paid&#62;</td><td>billing.read, projects.*</td><td>1</td>"
        ),
        "{}",
        page.body
    );
    let reader = stored(&app, "reader", &["tokens.read"]).await;
    let mut other = Browser::signed_in(&app, &reader.secret).await;
    assert_eq!(other.get("/console/roles").await.status, 403);
}

#[tokio::test]
async fn an_owner_s_page_shows_its_limits_and_credits_and_disables_all_its_tokens() {
    let app = spawn_admin_app().await;
    let first = app
        .admin_create(&json!({"userId": 7, "name": "a", "privilege": "full"}))
        .await;
    let second = app
        .admin_create(&json!({"userId": 7, "name": "b", "privilege": "full"}))
        .await;
    let limits = json!({"ratelimits": [{"name": "requests", "limit": 100, "duration": 60000}]});
    let answer = app
        .admin_json(Method::PUT, "/users/7/ratelimits", &limits)
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let credits = json!({"remaining": 500});
    let answer = app
        .admin_json(Method::PATCH, "/users/7/credits", &credits)
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");

    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    let page = browser.get("/console/owners/7").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.body.contains("<dd id=\"owner-state\">enabled</dd>"),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("<td>requests</td><td>100</td><td>60 s</td><td>100</td>"));
    assert!(page.body.contains("500 left (next refill: no refill)"));
    let csrf = page.csrf();
    let disabled = browser
        .post(
            "/console/owners/7/state",
            &[("csrf", &csrf), ("enabled", "false"), ("reason", "unpaid")],
        )
        .await;
    assert_eq!(disabled.status, 303, "{disabled:?}");
    for token in [&first, &second] {
        assert_eq!(
            verify_status(&app, &token.key).await,
            401,
            "disabled with its owner"
        );
    }
    let page = browser.get("/console/owners/7?done=disabled").await;
    assert!(page.body.contains("disabled "), "{}", page.body);
    assert!(page.body.contains("by config:ops: unpaid"));
    browser
        .post(
            "/console/owners/7/state",
            &[("csrf", &csrf), ("enabled", "true")],
        )
        .await;
    assert_eq!(verify_status(&app, &first.key).await, 200);

    for path in ["/console/owners/0", "/console/owners/x"] {
        assert_eq!(browser.get(path).await.status, 404, "{path}");
    }
    let reader = stored(&app, "reader", &["tokens.read"]).await;
    let mut other = Browser::signed_in(&app, &reader.secret).await;
    let page = other.get("/console/owners/7").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Rate limits"), "no quotas.read");
    assert!(!page.body.contains("id=\"disable-owner\""));
    let csrf = page.csrf();
    let forged = other
        .post(
            "/console/owners/7/state",
            &[("csrf", &csrf), ("enabled", "false")],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(
        verify_status(&app, &first.key).await,
        200,
        "nothing changed"
    );
}

#[tokio::test]
async fn the_webhooks_page_lists_endpoints_without_secrets_and_queues_a_test_and_a_retry() {
    let app = crate::webhooks::spawn_driven().await;
    let endpoint = crate::webhooks::add_endpoint(
        &app,
        &json!({"url": "http://127.0.0.1:9/hook", "events": ["token.*"]}),
    )
    .await;
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    let page = browser.get("/console/webhooks").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("http://127.0.0.1:9/hook"));
    assert!(
        page.body.contains("<td>token.*</td><td>enabled</td>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&endpoint.secret), "no secret");
    assert!(!page.body.contains("whsec_"), "no secret");
    assert!(page.body.contains("Nothing delivered yet."));
    let csrf = page.csrf();
    let queued = browser
        .post(
            &format!("/console/webhooks/{}/test", endpoint.id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(queued.status, 303, "{queued:?}");
    let page = browser.get("/console/webhooks?done=test").await;
    assert!(page.body.contains("A webhook.test event is queued"));
    assert!(
        page.body.contains("<td>webhook.test</td><td>pending</td>"),
        "{}",
        page.body
    );
    let delivery = app.admin_get("/webhooks/deliveries").await.body["deliveries"][0]["id"]
        .as_u64()
        .unwrap();
    let pending = browser
        .post(
            &format!("/console/webhooks/deliveries/{delivery}/retry"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(pending.status, 409);
    assert!(pending.body.contains("That delivery is pending"));

    let watcher = stored(&app, "watcher", &["webhooks.read"]).await;
    let mut other = Browser::signed_in(&app, &watcher.secret).await;
    let page = other.get("/console/webhooks").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Send a test event"));
    let csrf = page.csrf();
    let forged = other
        .post(
            &format!("/console/webhooks/{}/test", endpoint.id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(forged.status, 403);
    let reader = stored(&app, "reader", &["tokens.read"]).await;
    let mut third = Browser::signed_in(&app, &reader.secret).await;
    assert_eq!(third.get("/console/webhooks").await.status, 403);
}

#[tokio::test]
async fn the_metadata_editor_saves_a_json_object_and_shows_the_server_s_message_next_to_it() {
    let app = spawn_admin_app().await;
    let token = app
        .admin_create(&json!({"userId": 7, "name": "svc", "privilege": "full",
            "metadata": {"plan": "free"}}))
        .await;
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    let path = format!("/console/tokens/{}", token.id);
    let page = browser.get(&path).await;
    assert!(page.body.contains("id=\"save-metadata\""));
    let csrf = page.csrf();
    let cases = [
        ("[1, 2]", "metadata must be a JSON object"),
        ("{\"plan\": {\"nested\": 1}}", "plan: "),
        ("{\"plan\": ", "metadata must be a JSON object"),
    ];
    for (text, message) in cases {
        let answer = browser
            .post(
                &format!("{path}/metadata"),
                &[("csrf", &csrf), ("metadata", text)],
            )
            .await;
        assert_eq!(answer.status, 422, "{text}: {answer:?}");
        assert!(answer.body.contains("<p class=\"error\">"), "{text}");
        assert!(answer.body.contains(message), "{text}: {}", answer.body);
        assert_eq!(
            app.stored_metadata(token.id).await,
            json!({"plan": "free"}),
            "{text}"
        );
    }
    let saved = browser
        .post(
            &format!("{path}/metadata"),
            &[
                ("csrf", &csrf),
                ("metadata", "{\"plan\": \"pro\", \"seats\": 5}"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{saved:?}");
    assert_eq!(
        app.stored_metadata(token.id).await,
        json!({"plan": "pro", "seats": 5})
    );
    let page = browser.get(&format!("{path}?done=metadata")).await;
    assert!(page.body.contains("The metadata is saved."));
    assert!(page.body.contains("<td>seats</td>"));

    let reader = stored(&app, "reader", &["tokens.read"]).await;
    let mut other = Browser::signed_in(&app, &reader.secret).await;
    let page = other.get(&path).await;
    assert!(!page.body.contains("id=\"save-metadata\""));
    let csrf = page.csrf();
    let forged = other
        .post(
            &format!("{path}/metadata"),
            &[("csrf", &csrf), ("metadata", "{}")],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(
        app.stored_metadata(token.id).await,
        json!({"plan": "pro", "seats": 5})
    );
}

#[tokio::test]
async fn the_query_tester_says_whether_a_token_satisfies_a_permission_query() {
    let app = spawn_admin_app().await;
    let role = json!({"name": "reader", "permissions": ["reports.read", "projects.*"]});
    assert_eq!(
        app.admin_json(Method::POST, "/roles", &role).await.status,
        201
    );
    let token = app
        .admin_create(&json!({"userId": 7, "name": "svc", "privilege": "full",
            "roles": ["reader"], "permissions": ["billing.read"]}))
        .await;
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    let path = format!("/console/tokens/{}", token.id);
    let cases = [
        (
            "reports.read%20AND%20projects.write",
            200,
            "This token satisfies the query",
        ),
        (
            "billing.read%20AND%20NOT%20projects.a",
            200,
            "does not satisfy the query",
        ),
        ("admin.%2A", 200, "does not satisfy the query"),
        ("reports.read%20AND%20(", 400, "<p class=\"error\">"),
    ];
    for (query, status, says) in cases {
        let page = browser.get(&format!("{path}?query={query}")).await;
        assert_eq!(page.status, status, "{query}");
        assert!(page.body.contains(says), "{query}: {}", page.body);
    }
}

#[tokio::test]
async fn a_token_s_page_and_the_list_show_its_own_limits_and_credits_as_they_stand() {
    let app = spawn_admin_app().await;
    let token = app
        .admin_create(&json!({"userId": 7, "name": "svc", "privilege": "full",
            "ratelimits": [{"name": "requests", "limit": 10, "duration": 60000}],
            "credits": {"remaining": 100}}))
        .await;
    let plain = app
        .admin_create(&json!({"userId": 7, "name": "plain", "privilege": "full"}))
        .await;
    for _ in 0..2 {
        assert_eq!(verify_status(&app, &token.key).await, 200);
    }
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    let page = browser.get(&format!("/console/tokens/{}", token.id)).await;
    assert!(
        page.body
            .contains("<dd id=\"limits\">requests: 8 of 10 left per 60 s"),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("<dd id=\"credits\">98 left (next refill: no refill)</dd>"));
    // The list: its credits as they stand (what a verification leased out counted), in a row.
    let list = browser.get("/console/tokens").await;
    assert!(list.body.contains("<th scope=\"col\">Credits</th>"));
    let row_of = |id: u64| {
        let at = list.body.find(&format!(">{id}</a></td>")).expect("its row");
        list.body[at..at + list.body[at..].find("</tr>").unwrap()].to_owned()
    };
    assert!(
        row_of(token.id).contains("<td>98 left</td>"),
        "{}",
        row_of(token.id)
    );
    assert!(
        row_of(plain.id).contains("<td>unlimited</td>"),
        "{}",
        row_of(plain.id)
    );
    let page = browser.get(&format!("/console/tokens/{}", plain.id)).await;
    assert!(page.body.contains("<dd id=\"limits\">none of its own</dd>"));
    assert!(page
        .body
        .contains("<dd id=\"credits\">none of its own (unlimited)</dd>"));
    let reader = stored(&app, "reader", &["tokens.read"]).await;
    let mut other = Browser::signed_in(&app, &reader.secret).await;
    let page = other.get(&format!("/console/tokens/{}", token.id)).await;
    assert!(!page.body.contains("id=\"limits\""), "no quotas.read");
    let list = other.get("/console/tokens").await;
    assert!(!list.body.contains("Credits</th>"), "no quotas.read");
    assert!(!list.body.contains("98 left"));
}

#[tokio::test]
async fn a_token_s_roles_and_permissions_change_from_its_page_and_an_unknown_role_is_named() {
    let app = spawn_admin_app().await;
    let role = json!({"name": "reader", "permissions": ["reports.read"]});
    assert_eq!(
        app.admin_json(Method::POST, "/roles", &role).await.status,
        201
    );
    let token = app
        .admin_create(&json!({"userId": 7, "name": "svc", "privilege": "full"}))
        .await;
    let path = format!("/console/tokens/{}", token.id);
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    let page = browser.get(&path).await;
    assert!(page.body.contains("id=\"save-access\""), "{}", page.body);
    let csrf = page.csrf();
    let form = |add_roles: &'static str, add_permissions: &'static str| {
        [
            ("addRoles", add_roles),
            ("removeRoles", ""),
            ("addPermissions", add_permissions),
            ("removePermissions", ""),
        ]
    };
    let csrf_field: &str = &csrf;
    let post = move |fields: [(&'static str, &'static str); 4]| {
        let mut fields = fields.to_vec();
        fields.push(("csrf", csrf_field));
        fields
    };
    let refused = browser
        .post(&format!("{path}/access"), &post(form("reader, ghost", "")))
        .await;
    assert_eq!(refused.status, 422, "{refused:?}");
    assert!(
        refused
            .body
            .contains("<p class=\"error\">no role named &#34;ghost&#34;</p>"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"reader, ghost\""), "kept");
    assert_eq!(
        app.admin_get(&format!("/tokens/{}", token.id)).await.body["roles"],
        json!([])
    );
    let refused = browser
        .post(&format!("{path}/access"), &post(form("", "bad perm!")))
        .await;
    assert_eq!(refused.status, 422, "{refused:?}");
    assert!(refused
        .body
        .contains("id=\"addPermissions\" name=\"addPermissions\" value=\"bad perm!\""));

    let saved = browser
        .post(
            &format!("{path}/access"),
            &post(form("reader", "billing.*")),
        )
        .await;
    assert_eq!(saved.status, 303, "{saved:?}");
    assert_eq!(
        saved.location(),
        Some(format!("{path}?done=access").as_str())
    );
    let token_now = app.admin_get(&format!("/tokens/{}", token.id)).await.body;
    assert_eq!(token_now["roles"], json!(["reader"]));
    let page = browser.get(&format!("{path}?done=access")).await;
    assert!(page.body.contains("Its roles and permissions are saved."));
    assert!(
        page.body.contains("<dt>Roles</dt><dd>reader</dd>"),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("<dt>Effective permissions</dt><dd>billing.*, reports.read</dd>"));
    let taken = browser
        .post(
            &format!("{path}/access"),
            &[
                ("csrf", csrf.as_str()),
                ("removeRoles", "reader"),
                ("removePermissions", "billing.*"),
            ],
        )
        .await;
    assert_eq!(taken.status, 303, "{taken:?}");
    let events = app
        .admin_get(&format!("/tokens/{}/events", token.id))
        .await
        .body;
    let actors: Vec<String> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["event"] == "access_updated")
        .map(|event| {
            format!("{}:{}", event["actor"]["type"], event["actor"]["id"]).replace('"', "")
        })
        .collect();
    assert_eq!(actors, ["config:ops", "config:ops"], "{events}");

    let reader = stored(&app, "reader", &["tokens.read"]).await;
    let mut other = Browser::signed_in(&app, &reader.secret).await;
    let page = other.get(&path).await;
    assert!(!page.body.contains("id=\"save-access\""));
    let csrf = page.csrf();
    let forged = other
        .post(
            &format!("{path}/access"),
            &[("csrf", csrf.as_str()), ("addRoles", "reader")],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(
        app.admin_get(&format!("/tokens/{}", token.id)).await.body["roles"],
        json!([])
    );
}

#[tokio::test]
async fn a_token_s_and_an_owner_s_limits_and_credits_change_from_their_pages() {
    let app = spawn_admin_app().await;
    let token = app
        .admin_create(&json!({"userId": 7, "name": "svc", "privilege": "full"}))
        .await;
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    let path = format!("/console/tokens/{}", token.id);
    let page = browser.get(&path).await;
    assert!(page.body.contains("id=\"save-limits\""));
    assert!(page.body.contains(">[]</textarea>"), "{}", page.body);
    let csrf = page.csrf();
    let limits = "[{\"name\": \"requests\", \"limit\": 3, \"duration\": 60000}]";
    let saved = browser
        .post(
            &format!("{path}/ratelimits"),
            &[("csrf", &csrf), ("ratelimits", limits)],
        )
        .await;
    assert_eq!(saved.status, 303, "{saved:?}");
    assert_eq!(
        saved.location(),
        Some(format!("{path}?done=limits").as_str())
    );
    let credits = [
        ("csrf", csrf.as_str()),
        ("change", "set"),
        ("amount", "250"),
        ("refill", "keep"),
    ];
    let saved = browser.post(&format!("{path}/credits"), &credits).await;
    assert_eq!(saved.status, 303, "{saved:?}");
    assert_eq!(verify_status(&app, &token.key).await, 200);
    let page = browser.get(&format!("{path}?done=credits")).await;
    assert!(page.body.contains("Its credits are saved."));
    assert!(
        page.body
            .contains("<dd id=\"limits\">requests: 2 of 3 left per 60 s"),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("<dd id=\"credits\">249 left (next refill: no refill)</dd>"));
    assert!(
        page.body.contains("&#34;name&#34;: &#34;requests&#34;"),
        "the editor holds them"
    );

    // Refusals: next to the field, the text kept, nothing changed.
    /// A form, its fields, and the message the answer shows.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 4] = [
        (
            "ratelimits",
            vec![("ratelimits", "{\"name\": 1}")],
            "ratelimits: invalid type",
        ),
        (
            "ratelimits",
            vec![(
                "ratelimits",
                "[{\"name\": \"requests\", \"limit\": 0, \"duration\": 60000}]",
            )],
            "ratelimits[0].limit must be an integer from 1 to",
        ),
        (
            "credits",
            vec![("change", "add"), ("amount", "lots"), ("refill", "keep")],
            "increment must be an integer from 0 to",
        ),
        (
            "credits",
            vec![
                ("change", "keep"),
                ("refill", "monthly"),
                ("refillAmount", "10"),
                ("refillDay", "32"),
            ],
            "refill.refillDay must be an integer from 1 to 31",
        ),
    ];
    for (form, fields, message) in cases {
        let mut fields = fields;
        fields.push(("csrf", &csrf));
        let answer = browser.post(&format!("{path}/{form}"), &fields).await;
        assert_eq!(answer.status, 422, "{message}: {answer:?}");
        assert!(
            answer
                .body
                .contains(&format!("<p class=\"error\">{message}")),
            "{message}: {}",
            answer.body
        );
    }
    let answer = browser
        .post(
            &format!("{path}/ratelimits"),
            &[("csrf", &csrf), ("ratelimits", "[{\"name\": \"x y\"}")],
        )
        .await;
    assert_eq!(answer.status, 422);
    assert!(
        answer
            .body
            .contains("[{&#34;name&#34;: &#34;x y&#34;}</textarea>"),
        "kept"
    );
    let quota = app.admin_get(&format!("/tokens/{}", token.id)).await.body;
    assert_eq!(quota["ratelimits"][0]["limit"], 3, "{quota}");
    assert_eq!(quota["credits"]["remaining"], 249, "{quota}");

    // An owner's, through the same forms.
    let owner = "/console/owners/7";
    let limits = "[{\"name\": \"daily\", \"limit\": 1000, \"duration\": 86400000}]";
    let saved = browser
        .post(
            &format!("{owner}/ratelimits"),
            &[("csrf", &csrf), ("ratelimits", limits)],
        )
        .await;
    assert_eq!(saved.status, 303, "{saved:?}");
    let credits = [
        ("csrf", csrf.as_str()),
        ("change", "set"),
        ("amount", "40"),
        ("refill", "daily"),
        ("refillAmount", "40"),
    ];
    let saved = browser.post(&format!("{owner}/credits"), &credits).await;
    assert_eq!(saved.status, 303, "{saved:?}");
    assert_eq!(saved.location(), Some("/console/owners/7?done=credits"));
    let page = browser.get("/console/owners/7?done=credits").await;
    assert!(page.body.contains("Its credits are saved."));
    assert!(
        page.body
            .contains("<td>daily</td><td>1000</td><td>86400 s</td><td>1000</td>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("40 left (next refill: "),
        "{}",
        page.body
    );
    let refused = browser
        .post(
            &format!("{owner}/credits"),
            &[("csrf", &csrf), ("change", "take"), ("amount", "-1")],
        )
        .await;
    assert_eq!(refused.status, 422, "{refused:?}");
    assert!(refused
        .body
        .contains("decrement must be an integer from 0 to"));
    assert_eq!(
        browser
            .post("/console/owners/x/credits", &[("csrf", &csrf)])
            .await
            .status,
        404
    );
    let quota = app.admin_get("/users/7/quota").await.body;
    assert_eq!(quota["credits"]["remaining"], 40, "{quota}");

    // Without quotas.write: no form, and a forged one is refused.
    let reader = stored(&app, "reader", &["tokens.read", "quotas.read"]).await;
    let mut other = Browser::signed_in(&app, &reader.secret).await;
    let page = other.get(&path).await;
    assert!(page.body.contains("id=\"limits\""));
    assert!(!page.body.contains("id=\"save-limits\""));
    assert!(!page.body.contains("id=\"save-credits\""));
    let csrf = page.csrf();
    for target in [format!("{path}/credits"), format!("{owner}/credits")] {
        let forged = other
            .post(
                &target,
                &[("csrf", &csrf), ("change", "set"), ("amount", "1")],
            )
            .await;
        assert_eq!(forged.status, 403, "{target}");
    }
    let quota = app.admin_get("/users/7/quota").await.body;
    assert_eq!(quota["credits"]["remaining"], 40, "{quota}");
}

#[tokio::test]
async fn roles_are_created_changed_and_deleted_from_the_roles_page() {
    let app = spawn_admin_app().await;
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    let page = browser.get("/console/roles").await;
    assert!(
        page.body.contains("No roles yet. Create one below,"),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let create = |name: &'static str, permissions: &'static str| {
        vec![
            ("name", name),
            ("description", "Reads reports"),
            ("permissions", permissions),
        ]
    };
    let mut fields = create("reader", "reports.read, reports.list");
    fields.push(("csrf", &csrf));
    let created = browser.post("/console/roles", &fields).await;
    assert_eq!(created.status, 303, "{created:?}");
    assert_eq!(created.location(), Some("/console/roles?done=created"));
    let page = browser.get("/console/roles?done=created").await;
    assert!(page
        .body
        .contains("<tr><td>reader</td><td>Reads reports</td><td>reports.list, reports.read</td><td>0</td>"), "{}", page.body);

    for (name, permissions, status, message) in [
        (
            "reader",
            "x",
            409,
            "<p class=\"error\">a role named &#34;reader&#34; exists</p>",
        ),
        ("Bad Name", "x", 422, "<p class=\"error\">"),
        ("writer", "no way!", 422, "<p class=\"error\">"),
    ] {
        let mut fields = create(name, permissions);
        fields.push(("csrf", &csrf));
        let answer = browser.post("/console/roles", &fields).await;
        assert_eq!(answer.status, status, "{name}: {answer:?}");
        assert!(answer.body.contains(message), "{name}: {}", answer.body);
        assert!(
            answer
                .body
                .contains(&format!("id=\"name\" name=\"name\" value=\"{name}\"")),
            "kept"
        );
    }
    assert_eq!(
        app.admin_get("/roles").await.body["roles"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let changed = browser
        .post(
            "/console/roles/reader/change",
            &[
                ("csrf", &csrf),
                ("add", "audit.read"),
                ("remove", "reports.list"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{changed:?}");
    let role = app.admin_get("/roles/reader").await.body;
    assert_eq!(
        role["permissions"],
        json!(["audit.read", "reports.read"]),
        "{role}"
    );
    let unknown = browser
        .post(
            "/console/roles/ghost/change",
            &[("csrf", &csrf), ("add", "a")],
        )
        .await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown
            .body
            .contains("Role &#34;ghost&#34;: no role named &#34;ghost&#34;"),
        "{}",
        unknown.body
    );

    let holder = app
        .admin_create(
            &json!({"userId": 7, "name": "svc", "privilege": "full", "roles": ["reader"]}),
        )
        .await;
    let in_use = browser
        .post("/console/roles/reader/delete", &[("csrf", &csrf)])
        .await;
    assert_eq!(in_use.status, 409, "{in_use:?}");
    assert!(in_use.body.contains(
        "Role &#34;reader&#34;: 1 valid token(s) hold this role; tick &#34;take it from the tokens holding it&#34; to delete it anyway"
    ), "{}", in_use.body);
    let deleted = browser
        .post(
            "/console/roles/reader/delete",
            &[("csrf", &csrf), ("force", "yes")],
        )
        .await;
    assert_eq!(deleted.status, 303, "{deleted:?}");
    assert_eq!(app.admin_get("/roles").await.body["roles"], json!([]));
    assert_eq!(
        app.admin_get(&format!("/tokens/{}", holder.id)).await.body["roles"],
        json!([])
    );

    let reader = stored(&app, "reader", &["roles.read"]).await;
    let mut other = Browser::signed_in(&app, &reader.secret).await;
    let page = other.get("/console/roles").await;
    assert!(!page.body.contains("id=\"create-role\""));
    let csrf = page.csrf();
    let mut fields = create("sneaky", "x");
    fields.push(("csrf", &csrf));
    assert_eq!(other.post("/console/roles", &fields).await.status, 403);
    assert_eq!(app.admin_get("/roles").await.body["roles"], json!([]));
}

#[tokio::test]
async fn webhook_endpoints_are_added_with_their_secret_shown_once_switched_and_deleted() {
    let app = crate::webhooks::spawn_driven().await;
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    let page = browser.get("/console/webhooks").await;
    assert!(
        page.body.contains("No endpoints. Add one below;"),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let refused = browser
        .post(
            "/console/webhooks",
            &[
                ("csrf", &csrf),
                ("url", "ftp://hooks.example.com/x"),
                ("events", "token.*"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{refused:?}");
    assert!(
        refused.body.contains("value=\"ftp://hooks.example.com/x\""),
        "kept"
    );
    assert!(
        refused.body.contains("<p class=\"error\">"),
        "{}",
        refused.body
    );
    let refused = browser
        .post(
            "/console/webhooks",
            &[
                ("csrf", &csrf),
                ("url", "https://hooks.example.com/x"),
                ("events", "nope"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{refused:?}");
    assert_eq!(app.admin_get("/webhooks").await.body["webhooks"], json!([]));

    let created = browser
        .post(
            "/console/webhooks",
            &[
                ("csrf", &csrf),
                ("url", "http://127.0.0.1:9/iam"),
                ("events", "token.*, credits.low"),
                ("description", "billing"),
                ("includeMetadata", "yes"),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let at = created
        .body
        .find("class=\"secret\" value=\"")
        .expect("the secret");
    let rest = &created.body[at + "class=\"secret\" value=\"".len()..];
    let secret = &rest[..rest.find('"').unwrap()];
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(created.headers["cache-control"], "no-store");
    let endpoint = &app.admin_get("/webhooks").await.body["webhooks"][0];
    assert_eq!(endpoint["url"], "http://127.0.0.1:9/iam");
    assert_eq!(endpoint["events"], json!(["token.*", "credits.low"]));
    assert_eq!(endpoint["includeMetadata"], true);
    let id = endpoint["id"].as_u64().unwrap();
    let page = browser.get("/console/webhooks").await;
    assert!(!page.body.contains(secret), "shown once");

    let disabled = browser
        .post(
            &format!("/console/webhooks/{id}/state"),
            &[("csrf", &csrf), ("enabled", "false")],
        )
        .await;
    assert_eq!(disabled.status, 303, "{disabled:?}");
    assert_eq!(
        app.admin_get(&format!("/webhooks/{id}")).await.body["enabled"],
        false
    );
    let page = browser.get("/console/webhooks?done=disabled").await;
    assert!(
        page.body.contains(&format!("id=\"enable-{id}\"")),
        "{}",
        page.body
    );
    browser
        .post(
            &format!("/console/webhooks/{id}/state"),
            &[("csrf", &csrf), ("enabled", "true")],
        )
        .await;
    assert_eq!(
        app.admin_get(&format!("/webhooks/{id}")).await.body["enabled"],
        true
    );

    let watcher = stored(&app, "watcher", &["webhooks.read"]).await;
    let mut other = Browser::signed_in(&app, &watcher.secret).await;
    let page = other.get("/console/webhooks").await;
    assert!(!page.body.contains("id=\"add-endpoint\""));
    let other_csrf = page.csrf();
    let forged = other
        .post(
            &format!("/console/webhooks/{id}/delete"),
            &[("csrf", &other_csrf)],
        )
        .await;
    assert_eq!(forged.status, 403);

    let deleted = browser
        .post(
            &format!("/console/webhooks/{id}/delete"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(deleted.status, 303, "{deleted:?}");
    assert_eq!(app.admin_get("/webhooks").await.body["webhooks"], json!([]));
    let again = browser
        .post(
            &format!("/console/webhooks/{id}/delete"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(again.status, 404);
    assert!(again.body.contains("There is no such endpoint."));
}

#[tokio::test]
async fn the_console_s_answers_are_counted_in_one_metrics_series() {
    let app = spawn_admin_app().await;
    let series = |status: &str| {
        format!(r#"iam_http_requests_total{{method="*",route="/console",status="{status}"}}"#)
    };
    let (_, before) = crate::metrics::scrape(&app).await;
    let mut browser = Browser::signed_in(&app, ADMIN_SECRET).await;
    assert_eq!(browser.get("/console/tokens").await.status, 200);
    assert_eq!(browser.get("/console/nowhere").await.status, 404);
    let forged = browser.post("/console/tokens/new", &[("name", "x")]).await;
    assert_eq!(forged.status, 403);
    let (_, after) = crate::metrics::scrape(&app).await;
    let moved = |status: &str| {
        crate::metrics::value(&after, &series(status))
            - crate::metrics::value(&before, &series(status))
    };
    // The sign-in page and the tokens page; the sign-in's 303 is among the statuses not named.
    assert_eq!(moved("200"), 2.0);
    assert_eq!(moved("other"), 1.0);
    assert_eq!(moved("404"), 1.0);
    assert_eq!(moved("403"), 1.0);
    let unmatched = r#"iam_http_requests_total{method="*",route="unmatched",status="404"}"#;
    assert_eq!(
        crate::metrics::value(&after, unmatched) - crate::metrics::value(&before, unmatched),
        0.0,
        "the console's 404 is the console's"
    );
}
