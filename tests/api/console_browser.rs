//! The admin console in a real browser (SPEC B14): headless Chromium signs in through the form,
//! follows the pages' links, signs out with the header's button, and is refused a form sent
//! from another origin. The pages are shot into `docs/console/` on the way.

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::json;

use crate::browser_harness::{Browser, Site};
use crate::helpers::{spawn_admin_app, TestApp, ADMIN_SECRET};

/// The sign-in form's button.
pub(crate) const SIGN_IN: &str = "form[action='/console/sign-in'] button[type=submit]";
/// The header's "Sign out" button.
const SIGN_OUT: &str = "header form.who button[type=submit]";

/// A fresh browser on the sign-in page with `secret` typed in (not sent yet).
pub(crate) async fn at_sign_in(app: &TestApp, secret: &str) -> Browser {
    let browser = Browser::start().await;
    browser.goto(&app.url("/console")).await;
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.fill("secret", secret).await;
    browser
}

/// A fresh browser signed in as `ops` through the form, on the tokens page.
pub(crate) async fn signed_in(app: &TestApp) -> Browser {
    let browser = at_sign_in(app, ADMIN_SECRET).await;
    browser.click_and_wait(SIGN_IN).await;
    assert_eq!(
        browser.path().await,
        "/console/tokens",
        "{}",
        browser.describe().await
    );
    browser
}

/// What the browser's console said since the last look, less the browser's own request for
/// `/favicon.ico` (the console names no icon, so the app's 404 for it is logged once).
pub(crate) async fn problems(browser: &Browser) -> Vec<String> {
    let mut problems = browser.console_problems().await;
    problems.retain(|problem| !problem.contains("/favicon.ico"));
    problems
}

/// Whether the tokens table lists a token named `name` (a cell of its body says just that).
async fn lists(browser: &Browser, name: &str) -> bool {
    let cells = browser
        .execute(
            "return [...document.querySelectorAll('main table tbody td')] \
                 .map(cell => cell.textContent.trim());",
        )
        .await;
    cells
        .as_array()
        .is_some_and(|cells| cells.iter().any(|cell| cell == name))
}

#[tokio::test]
async fn signing_in_through_the_form_lands_on_the_tokens_with_a_strict_session_cookie() {
    let app = spawn_admin_app().await;
    let tokens = [
        (7, "billing", json!({"plan": "pro"})),
        (12, "ci-deploy", json!({"env": "staging"})),
        (31, "support-bot", json!({})),
    ];
    let mut keys = Vec::new();
    for (owner, name, metadata) in tokens.clone() {
        let created = app
            .admin_create(&json!({"userId": owner, "name": name, "privilege": "full",
                "metadata": metadata}))
            .await;
        keys.push(created.key);
    }
    // Some use for the list's 24 h sparklines.
    for (key, uses) in keys.iter().zip([4, 1, 0]) {
        for _ in 0..uses {
            assert_eq!(app.verify(key, "full").await.status, 200);
        }
    }
    app.tokens.flush_usage().await.expect("flush");
    let browser = at_sign_in(&app, ADMIN_SECRET).await;
    assert_eq!(browser.text("main h1").await, "Sign in");
    let focused = browser.execute("return document.activeElement.id").await;
    assert_eq!(focused, json!("secret"), "the field has the focus");
    // The stylesheet loaded under the page's CSP (the header is dark, not the default white).
    let header = browser
        .execute("return getComputedStyle(document.querySelector('header.top')).backgroundColor")
        .await;
    assert_eq!(header, json!("rgb(29, 35, 48)"), "console.css applied");
    browser.screenshot("sign-in").await;

    browser.click_and_wait(SIGN_IN).await;
    assert_eq!(browser.path().await, "/console/tokens");
    assert_eq!(browser.text("main h1").await, "Tokens");
    for (_, name, _) in tokens {
        assert!(
            lists(&browser, name).await,
            "{name}: {}",
            browser.describe().await
        );
    }
    let counts = browser
        .execute(
            "return [...document.querySelectorAll('td.usage .count')].map(c => c.textContent);",
        )
        .await;
    assert_eq!(counts, json!(["0", "1", "4"]), "newest first");
    assert_eq!(
        browser.text("header form.who span").await,
        "Signed in as config:ops"
    );
    assert_eq!(
        browser
            .attr("header nav a[href='/console/tokens']", "aria-current")
            .await
            .as_deref(),
        Some("page")
    );
    let cookies = browser.client.get_all_cookies().await.expect("cookies");
    let session = cookies
        .iter()
        .find(|cookie| cookie.name() == "iam_console")
        .expect("a session cookie");
    assert_eq!(session.value().len(), 64);
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");
    assert_eq!(session.path(), Some("/console"));
    assert!(
        !cookies.iter().any(|c| c.name() == "iam_console_sign_in"),
        "the sign-in form's CSRF cookie is cleared"
    );
    // Script cannot read the session (HttpOnly).
    let visible = browser.execute("return document.cookie").await;
    assert_eq!(visible, json!(""));
    // No CSP violation, script error or failed load on the way.
    assert_eq!(problems(&browser).await, Vec::<String>::new());
    browser.screenshot("tokens").await;
    browser.close().await;
}

#[tokio::test]
async fn a_token_s_page_opens_from_its_id_link_and_shows_its_metadata() {
    let app = spawn_admin_app().await;
    app.admin_create(&json!({"userId": 12, "name": "ci-deploy", "privilege": "full"}))
        .await;
    let token = app
        .admin_create(&json!({"userId": 7, "name": "billing", "privilege": "full",
            "ips": ["10.0.0.0/8"], "metadata": {"plan": "pro", "team": "payments"}}))
        .await;
    let browser = signed_in(&app).await;
    let link = format!("table a[href='/console/tokens/{}']", token.id);
    assert_eq!(browser.text(&link).await, token.id.to_string());
    browser.click_and_wait(&link).await;
    assert_eq!(
        browser.path().await,
        format!("/console/tokens/{}", token.id)
    );
    let heading = browser.text("main h1").await;
    assert!(heading.starts_with("billing"), "{heading}");
    assert!(heading.contains("valid"), "the status badge: {heading}");
    let facts = browser.text("main dl.facts").await;
    for fact in [
        "Id",
        &token.id.to_string(),
        "Owner",
        "7",
        "Privilege",
        "full",
        &token.public_id,
        "10.0.0.0/8",
    ] {
        assert!(
            facts.lines().any(|line| line.trim() == fact),
            "{fact:?} in {facts}"
        );
    }
    let metadata = browser.text("main table tbody").await;
    for (key, value) in [("plan", "pro"), ("team", "payments")] {
        assert!(
            metadata
                .lines()
                .any(|row| row.starts_with(key) && row.contains(value)),
            "{key}={value} in {metadata}"
        );
    }
    assert_eq!(problems(&browser).await, Vec::<String>::new());
    browser.screenshot("token").await;
    // The crumbs lead back.
    browser.click_and_wait("main .crumbs a").await;
    assert_eq!(browser.path().await, "/console/tokens");
    browser.close().await;
}

#[tokio::test]
async fn the_header_s_sign_out_button_ends_the_session() {
    let app = spawn_admin_app().await;
    app.admin_create(&json!({"userId": 7, "name": "billing", "privilege": "full"}))
        .await;
    let browser = signed_in(&app).await;
    assert!(lists(&browser, "billing").await);
    assert_eq!(browser.text(SIGN_OUT).await, "Sign out");
    browser.click_and_wait(SIGN_OUT).await;
    assert_eq!(browser.path().await, "/console/sign-in");
    assert_eq!(browser.text("main h1").await, "Sign in");
    assert!(!browser.has(SIGN_OUT).await, "no one is signed in");
    let cookies = browser.client.get_all_cookies().await.expect("cookies");
    assert!(
        !cookies.iter().any(|c| c.name() == "iam_console"),
        "the session cookie is cleared: {cookies:?}"
    );
    // Back does not bring the signed-in page out of a cache: pages are sent `no-store`.
    browser.client.back().await.expect("back");
    for _ in 0..100 {
        if browser.path().await == "/console/sign-in" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    browser.wait_ready().await;
    assert_eq!(
        browser.path().await,
        "/console/sign-in",
        "back after sign-out"
    );
    assert!(
        !browser.has("table").await,
        "no tokens shown after sign-out"
    );
    browser.goto(&app.url("/console/tokens")).await;
    assert_eq!(browser.path().await, "/console/sign-in");
    assert!(!browser.has("table").await);
    browser.close().await;
}

#[tokio::test]
async fn a_wrong_secret_is_said_next_to_the_field_and_the_form_works_again() {
    let app = spawn_admin_app().await;
    let browser = at_sign_in(&app, "iam_admin_not_a_credential").await;
    browser.click_and_wait(SIGN_IN).await;
    assert_eq!(browser.path().await, "/console/sign-in");
    assert_eq!(
        browser.text("#secret-error").await,
        "This secret is not a valid admin credential."
    );
    assert_eq!(
        browser.attr("#secret", "aria-invalid").await.as_deref(),
        Some("true")
    );
    assert_eq!(
        browser.attr("#secret", "aria-describedby").await.as_deref(),
        Some("secret-error")
    );
    // Next to the field: inside its group, right below it.
    let placed = browser
        .execute(
            "const field = document.getElementById('secret'); \
             const error = document.getElementById('secret-error'); \
             return field.parentElement === error.parentElement \
                 && field.nextElementSibling === error;",
        )
        .await;
    assert_eq!(placed, json!(true));
    let cookies = browser.client.get_all_cookies().await.expect("cookies");
    assert!(!cookies.iter().any(|c| c.name() == "iam_console"));
    // The page came with a fresh CSRF token: the right secret now signs in.
    browser.fill("secret", ADMIN_SECRET).await;
    browser.click_and_wait(SIGN_IN).await;
    assert_eq!(browser.path().await, "/console/tokens");
    browser.close().await;
}

#[tokio::test]
async fn a_form_posted_from_another_origin_does_not_sign_the_user_out() {
    let app = spawn_admin_app().await;
    app.admin_create(&json!({"userId": 7, "name": "billing", "privilege": "full"}))
        .await;
    let browser = signed_in(&app).await;
    let csrf = browser
        .attr("header form.who input[name=csrf]", "value")
        .await
        .expect("the header's CSRF token");
    let target = app.url("/console/sign-out");
    // Another origin on the same site (127.0.0.1, another port): the SameSite=Strict cookie
    // goes along, so only the CSRF token and the origin check stand in the way. The second
    // form even carries the session's own token (as if it had leaked).
    let page = format!(
        "<!doctype html><title>Elsewhere</title>\
         <form method=post action='{target}'><button id=bare>Sign out</button></form>\
         <form method=post action='{target}'><input type=hidden name=csrf value='{csrf}'>\
         <button id=leaked>Sign out</button></form>"
    );
    let site = Site::serve(page.clone()).await;
    for button in ["#bare", "#leaked"] {
        browser.goto(&site.url("/")).await;
        browser.click_and_wait(button).await;
        assert_eq!(browser.path().await, "/console/sign-out", "{button}");
        assert_eq!(
            browser.text("main h1").await,
            "Request refused",
            "{button}: {}",
            browser.describe().await
        );
        browser.goto(&app.url("/console/tokens")).await;
        assert_eq!(browser.path().await, "/console/tokens", "{button}");
        assert!(
            lists(&browser, "billing").await,
            "{button}: still signed in"
        );
    }
    // Another site altogether (a data: page, an opaque origin): the cookie stays home, so the
    // POST reaches the console as a stranger's and ends nothing.
    let data = format!(
        "data:text/html,{}",
        utf8_percent_encode(&page, NON_ALPHANUMERIC)
    );
    browser.goto(&data).await;
    browser.click_and_wait("#leaked").await;
    assert_eq!(
        browser.path().await,
        "/console/sign-in",
        "{}",
        browser.describe().await
    );
    browser.goto(&app.url("/console/tokens")).await;
    assert_eq!(browser.path().await, "/console/tokens");
    assert!(lists(&browser, "billing").await, "still signed in");
    browser.close().await;
}

/// Waits until the page's path (without its query) is `path` (a navigation the browser
/// finishes on its own).
pub(crate) async fn lands_on(browser: &Browser, path: &str) {
    for _ in 0..200 {
        if browser.current_url().await.path() == path {
            browser.wait_ready().await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("never reached {path}: {}", browser.describe().await);
}

/// Clicks a button whose form asks for confirmation (the script's `confirm`), and says yes.
pub(crate) async fn click_confirmed(browser: &Browser, css: &str) {
    browser.click(css).await;
    browser
        .client
        .accept_alert()
        .await
        .expect("the confirmation");
}

/// The key a "new key" page shows, once.
async fn shown_key(browser: &Browser) -> String {
    let key = browser.attr("#secret", "value").await.expect("the new key");
    assert!(key.starts_with("api_"), "{key}");
    key
}

#[tokio::test]
async fn a_token_s_life_in_the_console_moves_its_chart_and_is_audited_as_the_signed_in_credential()
{
    let app = crate::helpers::spawn_admin_app_with(|s| {
        s.usage.flush_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    let role = json!({"name": "reader", "permissions": ["reports.read"]});
    let answer = app.admin_json(reqwest::Method::POST, "/roles", &role).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    let scopes = [
        "tokens.read",
        "tokens.create",
        "tokens.disable",
        "tokens.rotate",
        "tokens.revoke",
        "audit.read",
        "analytics.read",
    ];
    let operator = crate::admin_credentials::stored(&app, "operator", &scopes).await;
    let actor = format!("credential:{}", operator.id);

    let browser = at_sign_in(&app, &operator.secret).await;
    browser.click_and_wait(SIGN_IN).await;
    assert_eq!(browser.path().await, "/console/tokens");
    browser.click_and_wait("#new-token").await;
    browser.fill("userId", "7").await;
    browser.fill("name", "billing-service").await;
    browser.fill("roles", "reader").await;
    browser.fill("metadata", r#"{"plan": "pro"}"#).await;
    browser.click_and_wait("#create").await;
    let key = shown_key(&browser).await;
    browser
        .click_and_wait("main a[href^='/console/tokens/']")
        .await;
    let token_path = browser.current_url().await.path().to_owned();
    let id: u64 = token_path.rsplit('/').next().unwrap().parse().unwrap();
    assert!(
        !browser.describe().await.contains(&key),
        "the key is shown once"
    );
    assert_eq!(browser.text("#valid-count").await, "0");

    for _ in 0..3 {
        assert_eq!(app.verify(&key, "full").await.status, 200);
    }
    app.tokens.flush_usage().await.expect("flush");
    browser.goto(&app.url(&token_path)).await;
    assert_eq!(browser.text("#valid-count").await, "3", "the chart moved");
    assert_eq!(browser.text("#uses").await, "3");
    browser
        .execute("document.querySelector('figure').scrollIntoView(); return true;")
        .await;
    browser.screenshot("token-chart").await;

    browser.fill("reason", "chargeback").await;
    click_confirmed(&browser, "#disable").await;
    lands_on(&browser, &token_path).await;
    assert!(browser.has("#enable").await, "{}", browser.describe().await);
    assert_eq!(
        app.verify(&key, "full").await.status,
        401,
        "refused while disabled"
    );
    browser.click_and_wait("#enable").await;
    assert_eq!(app.verify(&key, "full").await.status, 200);

    browser.click_and_wait("#rotate").await;
    let new_key = shown_key(&browser).await;
    assert_eq!(
        app.verify(&new_key, "full").await.status,
        200,
        "the new key"
    );
    assert_eq!(
        app.verify(&key, "full").await.status,
        200,
        "the old one, in its grace"
    );

    browser.goto(&app.url(&token_path)).await;
    browser.click("#confirm").await;
    click_confirmed(&browser, "#revoke").await;
    lands_on(&browser, &token_path).await;
    assert_eq!(app.verify(&key, "full").await.status, 401, "revoked");

    browser
        .goto(&app.url(&format!("/console/audit?tokenId={id}")))
        .await;
    let rows = browser
        .execute(
            "return [...document.querySelectorAll('#audit tbody tr')] \
                 .map(row => [...row.cells].slice(1, 3).map(cell => cell.textContent.trim()));",
        )
        .await;
    let rows: Vec<(String, String)> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            let cell = |i: usize| row[i].as_str().unwrap_or_default().to_owned();
            (cell(0), cell(1))
        })
        .collect();
    for event in ["created", "disabled", "enabled", "rotated", "revoked"] {
        assert!(
            rows.contains(&(event.to_owned(), actor.clone())),
            "{event} by {actor}: {rows:?}"
        );
    }
    browser.screenshot("audit").await;
    assert!(problems(&browser).await.is_empty());
    browser.close().await;

    // A credential that may only read: no action is shown, and a POST it forges from a page of
    // the console (its own session, its real CSRF token) is refused.
    let reader = crate::admin_credentials::stored(&app, "reader", &["tokens.read"]).await;
    let browser = at_sign_in(&app, &reader.secret).await;
    browser.click_and_wait(SIGN_IN).await;
    let fresh = format!("/console/tokens/{}", id + 1);
    browser.goto(&app.url(&fresh)).await;
    for action in ["#disable", "#rotate", "#revoke", "#enable"] {
        assert!(!browser.has(action).await, "{action} shown to a reader");
    }
    // (The page's CSP forbids `fetch` to a page of ours too: the forgery is a form, as a
    // browser would send it.)
    browser
        .execute(&format!(
            "const csrf = document.querySelector('input[name=csrf]').value; \
             const form = document.createElement('form'); \
             form.method = 'post'; form.action = '{fresh}/state'; \
             for (const [name, value] of [['enabled', 'false'], ['csrf', csrf]]) {{ \
               const input = document.createElement('input'); \
               input.type = 'hidden'; input.name = name; input.value = value; \
               form.appendChild(input); }} \
             document.body.appendChild(form); form.submit(); return true;"
        ))
        .await;
    lands_on(&browser, &format!("{fresh}/state")).await;
    assert_eq!(browser.text("main h1").await, "Not allowed");
    assert!(browser
        .text("main")
        .await
        .contains("does not hold the scope tokens.disable"));
    assert_eq!(
        app.verify(&new_key, "full").await.status,
        200,
        "nothing changed"
    );
    browser.close().await;
}
