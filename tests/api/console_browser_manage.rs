//! Managing through the admin console in a real browser (SPEC B14): a token's roles and
//! permissions, limits and credits on a token's and an owner's page, the roles, the webhook
//! endpoints and the admin credentials, each changed through the page's own forms and checked
//! where it counts: at verification, through the admin API, and on the page a user reads next.

use reqwest::Method;
use serde_json::{json, Value};

use crate::browser_harness::Browser;
use crate::console_browser::{at_sign_in, click_confirmed, lands_on, problems, signed_in, SIGN_IN};
use crate::helpers::{spawn_admin_app, Answer, TestApp};
use crate::webhook_receiver::Receiver;
use crate::webhooks::{round, spawn_driven};

// ---- What a user sees ----

/// The HTTP status of the page the browser shows (the navigation's own answer).
async fn status(browser: &Browser) -> u64 {
    let status = browser
        .execute("return performance.getEntriesByType('navigation')[0].responseStatus;")
        .await;
    status
        .as_u64()
        .unwrap_or_else(|| panic!("no status: {status}"))
}

/// The notice of the page (what a form did).
async fn notice(browser: &Browser) -> String {
    browser.text("main p.notice[role=status]").await
}

/// The value of the facts list's entry labelled `label` (`<dt>label</dt><dd>…</dd>`).
async fn fact(browser: &Browser, label: &str) -> String {
    let script = format!(
        "const dt = [...document.querySelectorAll('main dl.facts dt')] \
             .find(dt => dt.textContent.trim() === {label:?}); \
         return dt ? dt.nextElementSibling.innerText.trim() : null;"
    );
    match browser.execute(&script).await {
        Value::String(text) => text,
        other => panic!(
            "no fact {label:?} ({other}) on {}",
            browser.describe().await
        ),
    }
}

/// Whether the facts list has an entry labelled `label`.
async fn has_fact(browser: &Browser, label: &str) -> bool {
    let script = format!(
        "return [...document.querySelectorAll('main dl.facts dt')] \
             .some(dt => dt.textContent.trim() === {label:?});"
    );
    browser.execute(&script).await == json!(true)
}

/// The error shown next to the field with id `id` (in its group, which is marked invalid), or
/// `None`.
async fn error_at(browser: &Browser, id: &str) -> Option<String> {
    let script = format!(
        "const group = document.getElementById({id:?}).closest('.field'); \
         const error = group.querySelector('p.error'); \
         return error ? [group.classList.contains('invalid'), error.textContent] : null;"
    );
    match browser.execute(&script).await {
        Value::Null => None,
        Value::Array(found) => {
            assert_eq!(found[0], json!(true), "#{id}'s group is marked invalid");
            Some(found[1].as_str().unwrap_or_default().to_owned())
        }
        other => panic!("#{id}: {other}"),
    }
}

/// The errors the page shows anywhere.
async fn errors(browser: &Browser) -> Vec<String> {
    let found = browser
        .execute("return [...document.querySelectorAll('main p.error')].map(e => e.textContent);")
        .await;
    serde_json::from_value(found).expect("texts")
}

/// What the field with id `id` holds now.
async fn value(browser: &Browser, id: &str) -> String {
    browser
        .find(&format!("#{id}"))
        .await
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default()
}

/// Chooses the option `option` of the select with id `id`.
async fn choose(browser: &Browser, id: &str, option: &str) {
    browser
        .find(&format!("#{id}"))
        .await
        .select_by_value(option)
        .await
        .unwrap_or_else(|err| panic!("#{id} = {option}: {err}"));
}

/// The cells of the body rows of the table `css`, trimmed.
async fn rows(browser: &Browser, css: &str) -> Vec<Vec<String>> {
    let found = browser
        .execute(&format!(
            "return [...document.querySelectorAll('{css} tbody tr')] \
                 .map(row => [...row.cells].map(cell => cell.textContent.trim()));"
        ))
        .await;
    serde_json::from_value(found).expect("rows of cells")
}

/// Waits, when the hour is about to end, until the next one begins: limits count in windows
/// aligned to the epoch, and the counts a test reads must not start over under it.
async fn clear_of_the_hour_s_end() {
    let into_hour = chrono::Utc::now().timestamp() % 3600;
    if into_hour > 3600 - 90 {
        tokio::time::sleep(std::time::Duration::from_secs(
            (3600 - into_hour + 1) as u64,
        ))
        .await;
    }
}

/// The admin API's message for a grant that is not one.
const NOT_A_GRANT: &str = "a permission is 1 to 100 characters of A-Z, a-z, 0-9, _, ., : and -";

/// Closes the browser after checking its console said nothing (see `problems`) but the
/// refusals the test asked for: the browser logs each 4xx answer to a form posted to one of
/// `refused` (paths).
async fn close_quiet<S: AsRef<str>>(browser: Browser, refused: &[S]) {
    let refused: Vec<&str> = refused.iter().map(AsRef::as_ref).collect();
    assert_eq!(
        problems_besides(&browser, &refused).await,
        Vec::<String>::new()
    );
    browser.close().await;
}

/// What the browser's console said (see `problems`), less the refusals a test asked for.
async fn problems_besides(browser: &Browser, refused: &[&str]) -> Vec<String> {
    let mut problems = problems(browser).await;
    problems.retain(|problem| {
        !refused.iter().any(|path| {
            problem.starts_with("SEVERE http://")
                && problem.contains(&format!(
                    "{path} - Failed to load resource: the server responded with a status of 4"
                ))
        })
    });
    problems
}

/// The public verification of `key` with the permission query `query`.
async fn verify_query(app: &TestApp, key: &str, query: &str) -> u16 {
    let request = app
        .client
        .get(app.url("/api/public/verify"))
        .query(&[("privilege", "full"), ("permissions", query)])
        .header("x-api-key", key);
    Answer::from(request.send().await.expect("verify"))
        .await
        .status
}

async fn verify_status(app: &TestApp, key: &str) -> u16 {
    app.verify(key, "full").await.status
}

// ---- A token's roles and permissions ----

#[tokio::test]
async fn a_token_s_roles_and_permissions_are_given_and_taken_on_its_page_and_verification_follows()
{
    let app = spawn_admin_app().await;
    let role = json!({"name": "reader", "permissions": ["reports.read"]});
    let answer = app.admin_json(Method::POST, "/roles", &role).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    let token = app
        .admin_create(&json!({"userId": 7, "name": "billing", "privilege": "full"}))
        .await;
    assert_eq!(verify_query(&app, &token.key, "reports.read").await, 403);

    let browser = signed_in(&app).await;
    let page = format!("/console/tokens/{}", token.id);
    browser.goto(&app.url(&page)).await;
    assert_eq!(fact(&browser, "Roles").await, "none");
    assert_eq!(fact(&browser, "Effective permissions").await, "none");

    browser.fill("addRoles", "reader").await;
    browser
        .fill("addPermissions", "billing.read, projects.*")
        .await;
    browser.click_and_wait("#save-access").await;
    assert_eq!(browser.path().await, format!("{page}?done=access"));
    assert_eq!(
        notice(&browser).await,
        "Its roles and permissions are saved."
    );
    assert_eq!(fact(&browser, "Roles").await, "reader");
    assert_eq!(
        fact(&browser, "Effective permissions").await,
        "billing.read, projects.*, reports.read"
    );
    for field in [
        "addRoles",
        "removeRoles",
        "addPermissions",
        "removePermissions",
    ] {
        assert_eq!(value(&browser, field).await, "", "#{field} is empty again");
    }
    for (query, expected) in [
        ("reports.read", 200),
        ("reports.read AND billing.read AND projects.deploy", 200),
        ("billing.write", 403),
    ] {
        assert_eq!(
            verify_query(&app, &token.key, query).await,
            expected,
            "{query}"
        );
    }
    browser.screenshot("token-access").await;

    // Taken again: the role and one grant.
    browser.fill("removeRoles", "reader").await;
    browser.fill("removePermissions", "projects.*").await;
    browser.click_and_wait("#save-access").await;
    assert_eq!(
        notice(&browser).await,
        "Its roles and permissions are saved."
    );
    assert_eq!(fact(&browser, "Roles").await, "none");
    assert_eq!(
        fact(&browser, "Effective permissions").await,
        "billing.read"
    );
    assert_eq!(verify_query(&app, &token.key, "reports.read").await, 403);
    assert_eq!(verify_query(&app, &token.key, "billing.read").await, 200);

    // A role that does not exist: the API's message next to the field, what was typed kept,
    // nothing changed (not even the grant sent along).
    browser.fill("addRoles", "reader, ghost").await;
    browser.fill("addPermissions", "audit.read").await;
    browser.click_and_wait("#save-access").await;
    assert_eq!(status(&browser).await, 422, "{}", browser.describe().await);
    assert_eq!(browser.path().await, format!("{page}/access"));
    assert_eq!(
        error_at(&browser, "addRoles").await.as_deref(),
        Some("no role named \"ghost\"")
    );
    assert_eq!(errors(&browser).await.len(), 1, "one error, by its field");
    assert_eq!(value(&browser, "addRoles").await, "reader, ghost");
    assert_eq!(value(&browser, "addPermissions").await, "audit.read");
    assert_eq!(fact(&browser, "Roles").await, "none");
    assert_eq!(
        fact(&browser, "Effective permissions").await,
        "billing.read"
    );
    let stored = app.admin_get(&format!("/tokens/{}", token.id)).await;
    assert_eq!(stored.body["roles"], json!([]), "{stored:?}");
    assert_eq!(
        stored.body["permissions"],
        json!(["billing.read"]),
        "{stored:?}"
    );

    // A grant that is not one: named next to its own field.
    browser.fill("addRoles", "").await;
    browser.fill("addPermissions", "audit read").await;
    browser.click_and_wait("#save-access").await;
    assert_eq!(status(&browser).await, 422);
    assert_eq!(error_at(&browser, "addRoles").await, None);
    assert_eq!(
        error_at(&browser, "addPermissions").await.as_deref(),
        Some(NOT_A_GRANT)
    );
    assert_eq!(value(&browser, "addPermissions").await, "audit read");
    close_quiet(browser, &[format!("{page}/access")]).await;
}

// ---- Limits and credits ----

#[tokio::test]
async fn a_token_s_limits_and_credits_are_changed_on_its_page_and_verifications_spend_them() {
    let app = spawn_admin_app().await;
    let token = app
        .admin_create(&json!({"userId": 7, "name": "metered", "privilege": "full"}))
        .await;
    let browser = signed_in(&app).await;
    let page = format!("/console/tokens/{}", token.id);
    browser.goto(&app.url(&page)).await;
    assert_eq!(browser.text("#limits").await, "none of its own");
    assert_eq!(
        browser.text("#credits").await,
        "none of its own (unlimited)"
    );
    assert_eq!(value(&browser, "ratelimits").await, "[]");

    // Not JSON, then a limit of 0: refused next to the editor, the text kept, nothing saved.
    for (typed, message) in [
        (
            "requests: 100",
            "ratelimits must be a JSON array such as \
             [{\"name\": \"requests\", \"limit\": 100, \"duration\": 60000}]",
        ),
        (
            r#"[{"name": "requests", "limit": 0, "duration": 60000}]"#,
            "ratelimits[0].limit must be an integer from 1 to 1000000000",
        ),
    ] {
        browser.fill("ratelimits", typed).await;
        browser.click_and_wait("#save-limits").await;
        assert_eq!(status(&browser).await, 422, "{typed}");
        assert_eq!(browser.path().await, format!("{page}/ratelimits"));
        assert_eq!(
            error_at(&browser, "ratelimits").await.as_deref(),
            Some(message),
            "{typed}"
        );
        assert_eq!(value(&browser, "ratelimits").await, typed);
        assert_eq!(browser.text("#limits").await, "none of its own");
    }

    browser
        .fill(
            "ratelimits",
            r#"[{"name": "requests", "limit": 100, "duration": 3600000}]"#,
        )
        .await;
    browser.click_and_wait("#save-limits").await;
    assert_eq!(browser.path().await, format!("{page}?done=limits"));
    assert_eq!(notice(&browser).await, "Its rate limits are saved.");
    let limits = browser.text("#limits").await;
    assert!(
        limits.starts_with("requests: 100 of 100 left per 3600 s (the window ends "),
        "{limits}"
    );
    let editor: Value = serde_json::from_str(&value(&browser, "ratelimits").await).expect("JSON");
    assert_eq!(
        editor,
        json!([{"name": "requests", "limit": 100, "duration": 3600000, "autoApply": true}]),
        "the editor shows what is stored"
    );

    choose(&browser, "change", "set").await;
    browser.fill("amount", "250").await;
    browser.click_and_wait("#save-credits").await;
    assert_eq!(browser.path().await, format!("{page}?done=credits"));
    assert_eq!(notice(&browser).await, "Its credits are saved.");
    assert_eq!(
        browser.text("#credits").await,
        "250 left (next refill: no refill)"
    );
    assert_eq!(
        value(&browser, "change").await,
        "keep",
        "the form starts afresh"
    );
    assert_eq!(value(&browser, "amount").await, "");

    // Verifications spend both, and the page says so.
    clear_of_the_hour_s_end().await;
    for n in 0..3 {
        assert_eq!(verify_status(&app, &token.key).await, 200, "use {n}");
    }
    browser.goto(&app.url(&page)).await;
    let limits = browser.text("#limits").await;
    assert!(
        limits.starts_with("requests: 97 of 100 left per 3600 s"),
        "{limits}"
    );
    assert_eq!(
        browser.text("#credits").await,
        "247 left (next refill: no refill)"
    );

    // Taken down to 2: two more verifications, then the third is refused.
    choose(&browser, "change", "take").await;
    browser.fill("amount", "245").await;
    browser.click_and_wait("#save-credits").await;
    assert_eq!(notice(&browser).await, "Its credits are saved.");
    assert_eq!(
        browser.text("#credits").await,
        "2 left (next refill: no refill)"
    );
    for n in 0..2 {
        assert_eq!(verify_status(&app, &token.key).await, 200, "use {n}");
    }
    let refused = app.verify(&token.key, "full").await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(refused.reason(), "Usage exceeded");
    browser.goto(&app.url(&page)).await;
    assert_eq!(
        browser.text("#credits").await,
        "0 left (next refill: no refill)"
    );

    // Added to, with a daily refill: verifying again.
    choose(&browser, "change", "add").await;
    browser.fill("amount", "5").await;
    choose(&browser, "refill", "daily").await;
    browser.fill("refillAmount", "100").await;
    browser.click_and_wait("#save-credits").await;
    assert_eq!(notice(&browser).await, "Its credits are saved.");
    let credits = browser.text("#credits").await;
    assert!(
        credits.starts_with("5 left (next refill: ") && credits.contains(" 00:00 UTC (in "),
        "{credits}"
    );
    assert_eq!(verify_status(&app, &token.key).await, 200);
    let stored = app.admin_get(&format!("/tokens/{}", token.id)).await;
    assert_eq!(stored.body["credits"]["remaining"], json!(4), "{stored:?}");
    assert_eq!(
        stored.body["credits"]["refill"],
        json!({"interval": "daily", "amount": 100}),
        "{stored:?}"
    );

    // An amount that is not a number: the API's message next to it, nothing changed.
    choose(&browser, "change", "set").await;
    browser.fill("amount", "lots").await;
    browser.click_and_wait("#save-credits").await;
    assert_eq!(status(&browser).await, 422);
    assert_eq!(
        error_at(&browser, "amount").await.as_deref(),
        Some("remaining must be an integer from 0 to 9007199254740992")
    );
    assert!(browser.text("#credits").await.starts_with("4 left"));
    let refused = [format!("{page}/ratelimits"), format!("{page}/credits")];
    close_quiet(browser, &refused).await;
}

#[tokio::test]
async fn an_owner_s_limits_and_credits_are_set_on_its_page_and_shared_by_its_tokens() {
    let app = spawn_admin_app().await;
    let first = app
        .admin_create(&json!({"userId": 9, "name": "web", "privilege": "full"}))
        .await;
    let second = app
        .admin_create(&json!({"userId": 9, "name": "batch", "privilege": "full"}))
        .await;
    let browser = signed_in(&app).await;
    browser.goto(&app.url("/console/owners/9")).await;
    assert_eq!(browser.text("main h1").await, "Owner 9");
    assert_eq!(
        browser.text("main p.empty").await,
        "No limits on this owner. Set them below."
    );
    assert!(!has_fact(&browser, "Credits").await, "no credits yet");

    browser
        .fill(
            "ratelimits",
            r#"[{"name": "requests", "limit": 5, "duration": 3600000}]"#,
        )
        .await;
    browser.click_and_wait("#save-limits").await;
    assert_eq!(browser.path().await, "/console/owners/9?done=limits");
    assert_eq!(notice(&browser).await, "Its rate limits are saved.");
    let table = rows(&browser, "main").await;
    assert_eq!(table.len(), 1, "{table:?}");
    assert_eq!(table[0][..4], ["requests", "5", "3600 s", "5"]);

    choose(&browser, "change", "set").await;
    browser.fill("amount", "40").await;
    choose(&browser, "refill", "monthly").await;
    browser.fill("refillAmount", "40").await;
    browser.fill("refillDay", "15").await;
    browser.click_and_wait("#save-credits").await;
    assert_eq!(browser.path().await, "/console/owners/9?done=credits");
    assert_eq!(notice(&browser).await, "Its credits are saved.");
    let credits = fact(&browser, "Credits").await;
    assert!(
        credits.starts_with("40 left (next refill: ") && credits.contains("-15 00:00 UTC (in "),
        "{credits}"
    );
    let quota = app.admin_get("/users/9/quota").await;
    assert_eq!(
        quota.body["credits"]["refill"],
        json!({"interval": "monthly", "amount": 40, "refillDay": 15}),
        "{quota:?}"
    );

    // Both tokens draw on the one limit and the one pool.
    clear_of_the_hour_s_end().await;
    for key in [&first.key, &first.key, &second.key] {
        assert_eq!(verify_status(&app, key).await, 200);
    }
    browser.goto(&app.url("/console/owners/9")).await;
    assert_eq!(
        rows(&browser, "main").await[0][..4],
        ["requests", "5", "3600 s", "2"]
    );
    assert!(
        fact(&browser, "Credits")
            .await
            .starts_with("37 left (next refill: "),
        "{}",
        fact(&browser, "Credits").await
    );
    for key in [&second.key, &first.key] {
        assert_eq!(verify_status(&app, key).await, 200);
    }
    let refused = app.verify(&second.key, "full").await;
    assert_eq!(
        refused.status, 429,
        "the owner's limit is spent: {refused:?}"
    );
    browser.goto(&app.url("/console/owners/9")).await;
    assert_eq!(
        rows(&browser, "main").await[0][..4],
        ["requests", "5", "3600 s", "0"]
    );
    assert!(fact(&browser, "Credits").await.starts_with("35 left"));
    browser.screenshot("owner").await;

    // A refused limit keeps the text and changes nothing; `[]` takes the limits away.
    let typed = r#"[{"name": "requests", "limit": 5, "duration": 10}]"#;
    browser.fill("ratelimits", typed).await;
    browser.click_and_wait("#save-limits").await;
    assert_eq!(status(&browser).await, 422);
    assert_eq!(
        error_at(&browser, "ratelimits").await.as_deref(),
        Some("ratelimits[0].duration must be an integer from 1000 to 2592000000")
    );
    assert_eq!(value(&browser, "ratelimits").await, typed);
    assert_eq!(
        rows(&browser, "main").await[0][..4],
        ["requests", "5", "3600 s", "0"]
    );
    browser.fill("ratelimits", "[]").await;
    browser.click_and_wait("#save-limits").await;
    assert_eq!(notice(&browser).await, "Its rate limits are saved.");
    assert_eq!(
        browser.text("main p.empty").await,
        "No limits on this owner. Set them below."
    );
    assert_eq!(verify_status(&app, &second.key).await, 200, "no limit now");
    assert!(fact(&browser, "Credits").await.starts_with("35 left"));
    close_quiet(browser, &["/console/owners/9/ratelimits"]).await;
}

// ---- Roles ----

/// Opens the "Change" of role `name`'s row.
async fn open_role(browser: &Browser, name: &str) {
    browser
        .click(&format!("#roles details:has(#add-{name}) > summary"))
        .await;
}

#[tokio::test]
async fn roles_are_created_changed_and_deleted_on_their_page_and_one_in_use_only_when_forced() {
    let app = spawn_admin_app().await;
    let browser = signed_in(&app).await;
    browser
        .click_and_wait("header nav a[href='/console/roles']")
        .await;
    assert_eq!(browser.path().await, "/console/roles");
    assert!(browser
        .text("main p.empty")
        .await
        .starts_with("No roles yet."));

    browser.fill("name", "support").await;
    browser.fill("description", "The support desk").await;
    browser
        .fill("permissions", "tickets.read, tickets.write")
        .await;
    browser.click_and_wait("#create-role").await;
    assert_eq!(browser.path().await, "/console/roles?done=created");
    assert_eq!(
        notice(&browser).await,
        "The role is created: give it to tokens on their pages."
    );
    let table = rows(&browser, "#roles").await;
    assert_eq!(table.len(), 1, "{table:?}");
    assert_eq!(
        table[0][..4],
        [
            "support",
            "The support desk",
            "tickets.read, tickets.write",
            "0"
        ]
    );

    // The same name again, then a grant that is not one: the API's message by the field, what
    // was typed kept.
    browser.fill("name", "support").await;
    browser.fill("permissions", "tickets.read").await;
    browser.click_and_wait("#create-role").await;
    assert_eq!(status(&browser).await, 409);
    assert_eq!(
        error_at(&browser, "name").await.as_deref(),
        Some("a role named \"support\" exists")
    );
    assert_eq!(value(&browser, "name").await, "support");
    assert_eq!(value(&browser, "permissions").await, "tickets.read");
    browser.fill("name", "auditor").await;
    browser.fill("permissions", "audit read").await;
    browser.click_and_wait("#create-role").await;
    assert_eq!(status(&browser).await, 422);
    assert_eq!(
        error_at(&browser, "permissions").await.as_deref(),
        Some(NOT_A_GRANT)
    );
    assert_eq!(value(&browser, "name").await, "auditor");
    assert_eq!(rows(&browser, "#roles").await.len(), 1, "nothing created");

    // Held by a valid token: a change reaches its verifications at once.
    let token = app
        .admin_create(&json!({"userId": 7, "name": "desk", "privilege": "full",
            "roles": ["support"]}))
        .await;
    assert_eq!(verify_query(&app, &token.key, "tickets.write").await, 200);
    browser.goto(&app.url("/console/roles")).await;
    assert_eq!(
        rows(&browser, "#roles").await[0][3],
        "1",
        "one valid holder"
    );
    open_role(&browser, "support").await;
    browser.fill("add-support", "reports.read").await;
    browser.fill("remove-support", "tickets.write").await;
    browser.screenshot("roles").await;
    browser.click_and_wait("#change-support").await;
    assert_eq!(browser.path().await, "/console/roles?done=changed");
    assert_eq!(
        notice(&browser).await,
        "The role is changed: every token holding it has it at once."
    );
    assert_eq!(
        rows(&browser, "#roles").await[0][2],
        "reports.read, tickets.read"
    );
    assert_eq!(verify_query(&app, &token.key, "reports.read").await, 200);
    assert_eq!(verify_query(&app, &token.key, "tickets.write").await, 403);

    // Deleting it without the box: refused, saying how many tokens hold it; it stays.
    open_role(&browser, "support").await;
    click_confirmed(&browser, "#delete-support").await;
    lands_on(&browser, "/console/roles/support/delete").await;
    assert_eq!(status(&browser).await, 409);
    assert_eq!(
        browser.text("main p.error[role=alert]").await,
        "Role \"support\": 1 valid token(s) hold this role; \
         tick \"take it from the tokens holding it\" to delete it anyway"
    );
    assert_eq!(rows(&browser, "#roles").await[0][0], "support");
    assert_eq!(verify_query(&app, &token.key, "reports.read").await, 200);

    // With the box: deleted, and taken from the token.
    open_role(&browser, "support").await;
    browser.click("#force-support").await;
    click_confirmed(&browser, "#delete-support").await;
    lands_on(&browser, "/console/roles").await;
    assert_eq!(browser.path().await, "/console/roles?done=deleted");
    assert_eq!(notice(&browser).await, "The role is deleted.");
    assert!(!browser.has("#roles").await);
    assert!(browser
        .text("main p.empty")
        .await
        .starts_with("No roles yet."));
    assert_eq!(verify_query(&app, &token.key, "reports.read").await, 403);
    let stored = app.admin_get(&format!("/tokens/{}", token.id)).await;
    assert_eq!(stored.body["roles"], json!([]), "{stored:?}");
    close_quiet(
        browser,
        &["/console/roles", "/console/roles/support/delete"],
    )
    .await;
}

// ---- Webhooks ----

#[tokio::test]
async fn a_webhook_endpoint_is_added_with_its_secret_shown_once_then_tested_disabled_and_deleted() {
    // 127.0.0.1 over http is allowed (the receiver's), nothing else internal; no dispatcher:
    // the test sends each round.
    let app = spawn_driven().await;
    let receiver = Receiver::start().await;
    let browser = signed_in(&app).await;
    browser.goto(&app.url("/console/webhooks")).await;
    assert!(browser
        .text("main p.empty")
        .await
        .starts_with("No endpoints."));
    assert_eq!(
        value(&browser, "events").await,
        "*",
        "every event by default"
    );

    // Refused: not http(s), then an internal address; nothing is created.
    for (url, message) in [
        ("ftp://x", "url must use https"),
        (
            "http://10.0.0.1/hook",
            "url resolves to 10.0.0.1, a loopback, private, link-local or reserved address",
        ),
    ] {
        browser.fill("url", url).await;
        browser.fill("description", "billing sync").await;
        browser.click_and_wait("#add-endpoint").await;
        assert_eq!(status(&browser).await, 422, "{url}");
        assert_eq!(
            error_at(&browser, "url").await.as_deref(),
            Some(message),
            "{url}"
        );
        assert_eq!(value(&browser, "url").await, url);
        assert_eq!(value(&browser, "description").await, "billing sync");
        assert!(!browser.has("#secret").await);
        assert!(!browser.has("#endpoints").await, "{url}: nothing created");
    }
    let listed = app.admin_get("/webhooks").await;
    assert_eq!(listed.body, json!({"webhooks": []}), "{listed:?}");

    let url = receiver.url("/hook");
    browser.fill("url", &url).await;
    browser.fill("events", "token.*, webhook.test").await;
    browser.click("#includeMetadata").await;
    browser.click_and_wait("#add-endpoint").await;
    // `webhook.test` cannot be subscribed to: the API says so by the events field.
    assert_eq!(status(&browser).await, 422);
    assert_eq!(
        error_at(&browser, "events").await.as_deref(),
        Some(
            "\"webhook.test\" is not an event type or a pattern of one \
             (token.created, token.*, *)"
        )
    );
    assert_eq!(value(&browser, "events").await, "token.*, webhook.test");
    // What was typed and ticked is kept, as in every refused form.
    let ticked = browser
        .find("#includeMetadata")
        .await
        .is_selected()
        .await
        .expect("checked");
    assert!(
        ticked,
        "the refused form keeps the tick, as it keeps the URL and events"
    );
    browser.fill("events", "token.*").await;
    browser.click_and_wait("#add-endpoint").await;
    assert_eq!(status(&browser).await, 201, "{}", browser.describe().await);
    let secret = value(&browser, "secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let table = rows(&browser, "#endpoints").await;
    assert_eq!(table.len(), 1, "{table:?}");
    let id: u64 = table[0][0].parse().expect("an id");
    assert_eq!(
        notice(&browser).await,
        format!(
            "Endpoint {id} is added. Copy its signing secret now: it is shown this once and \
             cannot be read again (verify our webhook-signature header with it)."
        )
    );
    assert_eq!(table[0][1..4], [url.as_str(), "token.*", "enabled"]);
    let stored = app.admin_get(&format!("/webhooks/{id}")).await;
    assert_eq!(stored.status, 200, "{stored:?}");
    assert_eq!(stored.body["url"], json!(url));
    assert_eq!(stored.body["events"], json!(["token.*"]));
    assert_eq!(stored.body["description"], json!("billing sync"));
    assert_eq!(stored.body["includeMetadata"], json!(true));
    assert!(stored.body.get("secret").is_none(), "{stored:?}");

    // Shown once: the page read again has no secret.
    browser.goto(&app.url("/console/webhooks")).await;
    assert!(!browser.has("#secret").await);
    assert!(!browser.describe().await.contains(&secret));
    let source = browser.client.source().await.expect("source");
    assert!(!source.contains(&secret), "not even in the HTML");

    // A test event, signed with the secret shown.
    browser.click_and_wait(&format!("#test-{id}")).await;
    assert_eq!(browser.path().await, "/console/webhooks?done=test");
    assert_eq!(
        notice(&browser).await,
        "A webhook.test event is queued for that endpoint."
    );
    let deliveries = rows(&browser, "#deliveries").await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(
        deliveries[0][1..4],
        [id.to_string().as_str(), "webhook.test", "pending"]
    );
    assert_eq!(round(&app).await, 1);
    let received = receiver.wait_for(1).await;
    assert_eq!(received[0].json()["type"], json!("webhook.test"));
    received[0]
        .verify(&secret)
        .expect("signed with the secret the page showed");
    browser.goto(&app.url("/console/webhooks")).await;
    let deliveries = rows(&browser, "#deliveries").await;
    assert_eq!(deliveries[0][3], "delivered", "{deliveries:?}");
    assert_eq!(deliveries[0][6], "200", "{deliveries:?}");
    browser.screenshot("webhooks").await;

    browser.click_and_wait(&format!("#disable-{id}")).await;
    assert_eq!(browser.path().await, "/console/webhooks?done=disabled");
    assert_eq!(
        notice(&browser).await,
        "The endpoint is disabled: nothing is sent to it."
    );
    assert_eq!(
        rows(&browser, "#endpoints").await[0][3],
        "disabled (manual)"
    );
    assert!(!browser.has(&format!("#disable-{id}")).await);
    let stored = app.admin_get(&format!("/webhooks/{id}")).await;
    assert_eq!(stored.body["enabled"], json!(false), "{stored:?}");

    browser.click_and_wait(&format!("#enable-{id}")).await;
    assert_eq!(browser.path().await, "/console/webhooks?done=enabled");
    assert_eq!(
        notice(&browser).await,
        "The endpoint is enabled: its pending deliveries resume."
    );
    assert_eq!(rows(&browser, "#endpoints").await[0][3], "enabled");
    let stored = app.admin_get(&format!("/webhooks/{id}")).await;
    assert_eq!(stored.body["enabled"], json!(true), "{stored:?}");

    click_confirmed(&browser, &format!("#delete-{id}")).await;
    lands_on(&browser, "/console/webhooks").await;
    assert_eq!(browser.path().await, "/console/webhooks?done=deleted");
    assert_eq!(
        notice(&browser).await,
        "The endpoint and its delivery log are deleted."
    );
    assert!(!browser.has("#endpoints").await);
    assert!(!browser.has("#deliveries").await, "its log went with it");
    let listed = app.admin_get("/webhooks").await;
    assert_eq!(listed.body, json!({"webhooks": []}), "{listed:?}");
    close_quiet(browser, &["/console/webhooks"]).await;
}

// ---- Admin credentials ----

#[tokio::test]
async fn a_read_only_credential_made_in_the_console_sees_no_action_and_its_revocation_signs_it_out()
{
    let app = spawn_admin_app().await;
    let token = app
        .admin_create(&json!({"userId": 7, "name": "billing", "privilege": "full",
            "ratelimits": [{"name": "requests", "limit": 10, "duration": 60000}]}))
        .await;
    let admin = signed_in(&app).await;
    admin.goto(&app.url("/console/credentials")).await;
    admin.fill("name", "auditor").await;
    admin.fill("scopes", "tokens.read, quotas.read").await;
    admin.click_and_wait("#create-credential").await;
    assert_eq!(
        admin.text("main p.notice[role=status]").await,
        "Copy the new credential's secret now: it is shown this once and cannot be read again."
    );
    let secret = value(&admin, "secret").await;
    assert!(secret.starts_with("iam_admin_"), "{secret}");
    let table = rows(&admin, "main").await;
    let row = table
        .iter()
        .find(|row| row[1] == "auditor")
        .unwrap_or_else(|| panic!("no auditor in {table:?}"))
        .clone();
    let id: u64 = row[0].parse().expect("an id");
    assert_eq!(row[2], "quotas.read, tokens.read");
    assert_eq!(row[6], "active");
    admin.goto(&app.url("/console/credentials")).await;
    assert!(!admin.has("#secret").await, "shown once");
    let source = admin.client.source().await.expect("source");
    assert!(!source.contains(&secret));

    // The secret signs in elsewhere; the token's page shows it, but no action.
    let reader = at_sign_in(&app, &secret).await;
    reader.click_and_wait(SIGN_IN).await;
    assert_eq!(reader.path().await, "/console/tokens");
    assert_eq!(
        reader.text("header form.who span").await,
        format!("Signed in as credential:{id}")
    );
    let page = format!("/console/tokens/{}", token.id);
    reader.goto(&app.url(&page)).await;
    assert_eq!(status(&reader).await, 200);
    assert!(
        reader
            .text("#limits")
            .await
            .starts_with("requests: 10 of 10 left per 60 s"),
        "quotas.read shows them"
    );
    for action in [
        "#disable",
        "#enable",
        "#rotate",
        "#revoke",
        "#save-access",
        "#save-limits",
        "#save-credits",
        "#save-metadata",
    ] {
        assert!(!reader.has(action).await, "{action} shown to a reader");
    }

    // Revoked from the first session: the second is sent to sign in on its next page.
    click_confirmed(&admin, &format!("#revoke-{id}")).await;
    lands_on(&admin, "/console/credentials").await;
    let table = rows(&admin, "main").await;
    let row = table
        .iter()
        .find(|row| row[0] == id.to_string())
        .expect("row");
    assert_eq!(row[6], "inactive", "{table:?}");
    assert!(!admin.has(&format!("#revoke-{id}")).await);
    reader.goto(&app.url(&page)).await;
    assert_eq!(reader.path().await, "/console/sign-in");
    assert!(!reader.has("#limits").await);
    assert_eq!(problems(&admin).await, Vec::<String>::new());
    admin.close().await;
    reader.close().await;
}
