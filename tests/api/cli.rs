//! The `iam-tokens` command line, run as a user would: create, list and revoke tokens, manage
//! roles and what tokens hold, mint a development access token, migrate, and check the
//! configuration.

use std::process::{Command, Output};

use iam_tokens::domain::Privilege;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

/// Runs the binary with `args`, with no inherited `IAM_*` or `RUST_LOG` variables, from a
/// directory without a `config.toml`, plus the given environment.
pub(crate) async fn run(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_iam-tokens"));
    command.args(args).current_dir(env!("CARGO_TARGET_TMPDIR"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IAM") {
            command.env_remove(name);
        }
    }
    // Default log level: logs go to stderr, so stdout must stay pure output.
    command.env_remove("RUST_LOG");
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("blocking task")
        .expect("the binary runs")
}

/// Runs `args` against the test app's database and expects success.
async fn run_on(app: &TestApp, args: &[&str]) -> String {
    let url = app.database_url();
    let output = run(args, &[("IAM__DATABASE__URL", url)]).await;
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        describe(&output)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn json_of(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|_| panic!("not JSON: {stdout}"))
}

/// The timestamp `at` (as printed) plus one hour, in the same format.
fn one_hour_after(at: &Value) -> String {
    let at = chrono::DateTime::parse_from_rfc3339(at.as_str().unwrap_or_default())
        .expect("an ISO-8601 timestamp")
        .with_timezone(&chrono::Utc);
    iam_tokens::envelope::iso(&(at + chrono::Duration::hours(1)))
}

#[tokio::test]
async fn token_create_list_and_revoke_work_on_the_configured_database() {
    let app = spawn_app().await;
    let create = [
        "token",
        "create",
        "--user",
        "5",
        "--name",
        "cli",
        "--privilege",
        "full",
        "--ip",
        "10.0.0.0/8",
        "--expires",
        "1h",
    ];
    let created = json_of(&run_on(&app, &create).await);
    let key = created["data"]["rawApiKey"].as_str().unwrap_or_default();
    let public_id = created["data"]["rawPublicId"].as_str().unwrap_or_default();
    let verified = app.lib_verify(key, Privilege::Full, Some("10.1.2.3")).await;
    assert!(verified.is_ok(), "the printed key verifies: {verified:?}");

    let listed = json_of(&run_on(&app, &["token", "list", "--user", "5", "--json"]).await);
    let id = app.token_id(public_id).await;
    // The command runs on the system clock: the row's creation time is whatever it read.
    let created_at = &listed["data"]["tokenList"][0]["created_at"];
    let expires_at = one_hour_after(created_at);
    assert_eq!(
        created,
        json!({"ok": true, "date": created["date"], "data": {
            "rawApiKey": key, "rawPublicId": public_id, "expiresAt": expires_at,
        }})
    );
    assert_eq!(
        listed,
        json!({"ok": true, "date": listed["date"], "data": {
            "total": 1, "totalInvalidTokens": 0, "totalValidTokens": 1,
            "tokenList": [{
                "id": id, "name": "cli", "created_at": created_at, "expires_at": expires_at,
                "restricted_to_ip_address": ["10.0.0.0/8"], "last_used": app.clock_iso(),
                "usage_count": 1, "public_identifier": public_id, "privilege_type": "full",
            }],
        }})
    );

    let revoked = json_of(&run_on(&app, &["token", "revoke", key]).await);
    assert_eq!(
        revoked,
        json!({"ok": true, "date": revoked["date"], "data": {
            "msg": "Token invalided successfully", "invalidedTokenId": id, "userId": 5,
        }})
    );
    // The CLI is another process: the app sees its change once its cache entry expires.
    app.clock.advance(app.settings.verify.cache_ttl);
    let after = app.lib_verify(key, Privilege::Full, Some("10.1.2.3")).await;
    assert_eq!(
        after.reason().map(|r| r.as_str()),
        Some("Invalid key".into())
    );
}

#[tokio::test]
async fn dev_token_prints_an_access_token_the_manage_routes_accept() {
    let app = spawn_app().await;
    let stdout = run(&["dev-token", "--user", "9", "--ttl", "1h"], &[]).await;
    assert!(stdout.status.success(), "{}", describe(&stdout));
    let jwt = String::from_utf8(stdout.stdout).expect("UTF-8");
    let response = app
        .client
        .get(app.url("/api/manage/list-metadata"))
        .bearer_auth(jwt.trim())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(
        body["data"],
        json!({"total": 0, "totalInvalidTokens": 0, "totalValidTokens": 0})
    );
}

#[tokio::test]
async fn migrate_prints_how_many_migrations_it_applied() {
    // MySQL's migrations and information_schema (SQLite files are migrated when opened).
    crate::mysql_only!();
    let app = spawn_app_with(|s| s.database.migrate_on_start = false).await;
    let all = iam_tokens::store::MIGRATIONS.len();
    let cases = [(all, "a fresh database"), (0, "nothing left to apply")];
    for (applied, case) in cases {
        let stdout = run_on(&app, &["migrate"]).await;
        assert_eq!(
            stdout,
            format!("applied {applied} migration(s)\n"),
            "{case}"
        );
    }
    let tables: u64 = app
        .query_one(
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name = 'api_tokens'",
            (),
        )
        .await;
    assert_eq!(tables, 1);
}

#[tokio::test]
async fn config_check_accepts_the_defaults_and_names_an_unknown_key() {
    let ok = run(&["config", "check"], &[]).await;
    assert!(ok.status.success(), "{}", describe(&ok));
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "configuration OK\n");

    let bogus = run(&["config", "check"], &[("IAM__SERVER__BOGUS", "1".into())]).await;
    assert!(!bogus.status.success(), "{}", describe(&bogus));
    let stderr = String::from_utf8_lossy(&bogus.stderr);
    assert!(stderr.contains("bogus"), "stderr names the key: {stderr}");
}

/// The subcommands a `--help` page lists under `Commands:` (not `help` itself).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Walks the whole command tree from `--help`, so a new subcommand is covered the day it is
/// added.
#[tokio::test]
async fn every_subcommand_has_help() {
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    let mut seen = Vec::new();
    while let Some(path) = pending.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let output = run(&args, &[]).await;
        assert!(output.status.success(), "{args:?}: {}", describe(&output));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(stdout.contains("Usage:"), "{args:?}: {stdout}");
        for name in subcommands(&stdout) {
            let mut child = path.clone();
            child.push(name);
            pending.push(child);
        }
        seen.push(path.join(" "));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "",
            "admin-token",
            "admin-token config",
            "admin-token list",
            "admin-token new",
            "admin-token revoke",
            "bans",
            "bans lift",
            "bans list",
            "config",
            "config check",
            "copy",
            "dev-token",
            "migrate",
            "roles",
            "roles create",
            "roles delete",
            "roles list",
            "roles show",
            "roles update",
            "serve",
            "token",
            "token access",
            "token create",
            "token disable",
            "token enable",
            "token list",
            "token revoke",
            "token rotate",
            "webhooks",
            "webhooks add",
            "webhooks list",
            "webhooks remove",
        ]
    );
}

/// Listings print a table for people, and JSON with `--json` for scripts.
#[tokio::test]
async fn token_list_prints_a_table_unless_asked_for_json() {
    let app = spawn_app().await;
    let create = [
        "token",
        "create",
        "--user",
        "5",
        "--name",
        "my ci",
        "--privilege",
        "full",
    ];
    let created = json_of(&run_on(&app, &create).await);
    let public_id = created["data"]["rawPublicId"].as_str().unwrap_or_default();
    let id = app.token_id(public_id).await;
    let table = run_on(&app, &["token", "list", "--user", "5"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "user 5: 1 valid, 0 invalid, 1 in all");
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID",
            "NAME",
            "PRIVILEGE",
            "CREATED",
            "EXPIRES",
            "LAST",
            "USED",
            "USES",
            "IPS"
        ]
    );
    assert!(lines[2].starts_with(&format!("{id}  ")), "{table}");
    assert!(lines[2].contains("  my ci  full  "), "{table}");
    assert!(
        lines[2].ends_with("  never    never      0     anywhere"),
        "{table}"
    );
    assert_eq!(lines.len(), 3, "{table}");
    // The columns line up: every cell of the row starts where its header does.
    let name_at = lines[1].find("NAME").expect("NAME");
    assert_eq!(lines[2].find("my ci"), Some(name_at), "{table}");
    let json = json_of(&run_on(&app, &["token", "list", "--user", "5", "--json"]).await);
    assert_eq!(json["data"]["tokenList"][0]["name"], "my ci");
}

/// A refusal goes to stderr with exit code 1, and stdout stays empty for scripts.
#[tokio::test]
async fn a_refused_operation_says_why_on_stderr_and_exits_non_zero() {
    let app = spawn_app().await;
    let env = [
        ("IAM__DATABASE__URL", app.database_url()),
        ("IAM__API_TOKENS__LIMIT_TOKENS_PER_USER", "1".to_owned()),
    ];
    let first = run(&["token", "create", "--user", "5", "--name", "one"], &env).await;
    assert!(first.status.success(), "{}", describe(&first));
    let output = run(&["token", "create", "--user", "5", "--name", "two"], &env).await;
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(output.stdout.is_empty(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: You cannot have more then 1 valid tokens at a time"),
        "{stderr}"
    );
    assert_eq!(app.token_row_count().await, 1);
}

/// SPEC B3 at the command line: the same domain, refused before anything is opened.
#[tokio::test]
async fn user_flags_outside_the_id_domain_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let url = app.database_url();
    for user in [
        "0",
        "-1",
        "9223372036854775808",
        "18446744073709551615",
        "seven",
    ] {
        let flag = format!("--user={user}");
        for args in [
            vec!["token", "create", &flag, "--name", "cli"],
            vec!["token", "list", &flag],
            vec!["dev-token", &flag],
        ] {
            let output = run(&args, &[("IAM__DATABASE__URL", url.clone())]).await;
            assert_eq!(
                output.status.code(),
                Some(2),
                "{args:?}: {}",
                describe(&output)
            );
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("user id must be an integer from 1 to 9223372036854775807"),
                "{args:?}: {stderr}"
            );
        }
    }
    assert_eq!(app.token_row_count().await, 0);
    let max = "9223372036854775807";
    run_on(&app, &["token", "create", "--user", max, "--name", "cli"]).await;
    let listed = json_of(&run_on(&app, &["token", "list", "--user", max, "--json"]).await);
    assert_eq!(listed["data"]["totalValidTokens"], 1, "{listed}");
}

/// Runs `args` against the test app's database and expects a refusal: exit code 1, nothing on
/// stdout; answers stderr.
async fn refused_on(app: &TestApp, args: &[&str]) -> String {
    let output = run(args, &[("IAM__DATABASE__URL", app.database_url())]).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "{args:?}: {}",
        describe(&output)
    );
    assert!(output.stdout.is_empty(), "{args:?}: {}", describe(&output));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The value of the `label` line of a `label  value` listing.
fn field<'o>(stdout: &'o str, label: &str) -> &'o str {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label} in {stdout}"))
}

/// `roles show`'s text of a role.
fn role_text(
    name: &str,
    description: &str,
    permissions: &str,
    tokens: u64,
    at: (&str, &str),
) -> String {
    format!(
        "name         {name}\n\
         description  {description}\n\
         permissions  {permissions}\n\
         tokens       {tokens}\n\
         created      {}\n\
         updated      {}\n",
        at.0, at.1
    )
}

/// A token created with the CLI for user 5, and its id.
async fn cli_token(app: &TestApp) -> u64 {
    let create = ["token", "create", "--user", "5", "--name", "cli"];
    let created = json_of(&run_on(app, &create).await);
    app.token_id(created["data"]["rawPublicId"].as_str().unwrap_or_default())
        .await
}

/// SPEC B4 at the command line: a role is created, listed (a table, or JSON), shown and
/// changed, each printed as it is after the change.
#[tokio::test]
async fn roles_are_created_listed_shown_and_updated() {
    let app = spawn_app().await;
    let create = [
        "roles",
        "create",
        "reader",
        "--description",
        "Reads projects",
        "--permission",
        "projects.read",
        "--permission",
        "billing.*",
    ];
    let created = run_on(&app, &create).await;
    // The command runs on the system clock: the role's times are whatever it read.
    let at = field(&created, "created").to_owned();
    let perms = "billing.*,projects.read";
    let text = role_text("reader", "Reads projects", perms, 0, (&at, &at));
    assert_eq!(created, text);
    let bare = run_on(&app, &["roles", "create", "bare"]).await;
    let bare_at = field(&bare, "created").to_owned();
    assert_eq!(
        bare,
        role_text("bare", "none", "none", 0, (&bare_at, &bare_at))
    );

    assert_eq!(run_on(&app, &["roles", "show", "reader"]).await, text);
    assert_eq!(
        run_on(&app, &["roles", "list"]).await,
        "NAME    TOKENS  PERMISSIONS              DESCRIPTION\n\
         bare    0       none\n\
         reader  0       billing.*,projects.read  Reads projects\n"
    );
    let reader_json = format!(
        r#"{{
    "name": "reader",
    "description": "Reads projects",
    "permissions": [
      "billing.*",
      "projects.read"
    ],
    "tokens": 0,
    "createdAt": "{at}",
    "updatedAt": "{at}"
  }}"#
    );
    assert_eq!(
        run_on(&app, &["roles", "list", "--json"]).await,
        format!(
            r#"[
  {{
    "name": "bare",
    "description": null,
    "permissions": [],
    "tokens": 0,
    "createdAt": "{bare_at}",
    "updatedAt": "{bare_at}"
  }},
  {reader_json}
]
"#
        )
    );
    let shown = json_of(&run_on(&app, &["roles", "show", "reader", "--json"]).await);
    assert_eq!(
        shown,
        json!({
            "name": "reader", "description": "Reads projects",
            "permissions": ["billing.*", "projects.read"], "tokens": 0,
            "createdAt": at, "updatedAt": at,
        })
    );

    let update = [
        "roles",
        "update",
        "reader",
        "--description",
        "Reads projects and audits",
        "--add",
        "audit.read",
        "--add",
        "projects.*",
        "--remove",
        "projects.read",
        "--remove",
        "billing.*",
    ];
    let updated = run_on(&app, &update).await;
    let updated_at = field(&updated, "updated").to_owned();
    let now = "audit.read,projects.*";
    let description = "Reads projects and audits";
    let text = role_text("reader", description, now, 0, (&at, &updated_at));
    assert_eq!(updated, text);
    assert_eq!(run_on(&app, &["roles", "show", "reader"]).await, text);
    let cleared = run_on(&app, &["roles", "update", "reader", "--clear-description"]).await;
    let cleared_at = field(&cleared, "updated").to_owned();
    assert_eq!(
        cleared,
        role_text("reader", "none", now, 0, (&at, &cleared_at))
    );

    let events: Vec<(String, String)> = app
        .query_all("SELECT event, actor_type FROM audit_events ORDER BY id", ())
        .await;
    let cli = |event: &str| (event.to_owned(), "cli".to_owned());
    let expected = [
        cli("role_created"),
        cli("role_created"),
        cli("role_updated"),
        cli("role_updated"),
    ];
    assert_eq!(events, expected);
}

/// `token access` gives and takes roles and direct permissions and prints what the token holds
/// afterwards: its roles, its direct permissions, and its effective ones (direct ∪ its roles').
#[tokio::test]
async fn token_access_prints_the_roles_and_the_effective_permissions() {
    let app = spawn_app().await;
    let role = [
        "roles",
        "create",
        "reader",
        "--permission",
        "projects.read",
        "--permission",
        "billing.*",
    ];
    run_on(&app, &role).await;
    let id = cli_token(&app).await;
    let token = id.to_string();
    let give = [
        "token",
        "access",
        &token,
        "--add-role",
        "reader",
        "--add-permission",
        "audit.read",
    ];
    let held = format!(
        "token        {id}\n\
         roles        reader\n\
         permissions  audit.read\n\
         effective    audit.read,billing.*,projects.read\n"
    );
    assert_eq!(run_on(&app, &give).await, held);
    // With no change it only prints them (and records nothing).
    assert_eq!(run_on(&app, &["token", "access", &token]).await, held);
    let listed = run_on(&app, &["roles", "list"]).await;
    assert_eq!(
        listed.lines().nth(1),
        Some("reader  1       billing.*,projects.read"),
        "{listed}"
    );

    let take = [
        "token",
        "access",
        &token,
        "--remove-role",
        "reader",
        "--remove-permission",
        "audit.read",
        "--add-permission",
        "*",
    ];
    assert_eq!(
        run_on(&app, &take).await,
        format!(
            "token        {id}\n\
             roles        none\n\
             permissions  *\n\
             effective    *\n"
        )
    );
    let events: Vec<(String, String)> = app
        .query_all(
            "SELECT event, actor_type FROM audit_events \
             WHERE token_id = ? AND event = 'access_updated'",
            (id,),
        )
        .await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|(_, actor)| actor == "cli"), "{events:?}");

    let unknown = ["token", "access", &token, "--add-role", "ghost"];
    let stderr = refused_on(&app, &unknown).await;
    assert!(
        stderr.contains("error: no role named \"ghost\""),
        "{stderr}"
    );
    let missing = refused_on(
        &app,
        &["token", "access", "999999", "--add-permission", "a"],
    )
    .await;
    assert!(
        missing.contains("error: no token with id 999999"),
        "{missing}"
    );
}

/// A role valid tokens hold is deleted only with --force, which takes it from them; refusals
/// say why on stderr with exit code 1 and change nothing.
#[tokio::test]
async fn deleting_a_role_in_use_needs_force_and_refusals_say_why() {
    let app = spawn_app().await;
    run_on(&app, &["roles", "create", "reader", "--permission", "a.b"]).await;
    let exists = refused_on(&app, &["roles", "create", "reader"]).await;
    assert!(
        exists.contains("error: a role named \"reader\" exists"),
        "{exists}"
    );
    let id = cli_token(&app).await;
    let token = id.to_string();
    run_on(&app, &["token", "access", &token, "--add-role", "reader"]).await;

    let in_use = refused_on(&app, &["roles", "delete", "reader"]).await;
    assert!(
        in_use.contains("error: 1 valid token(s) hold this role; use --force"),
        "{in_use}"
    );
    let shown = run_on(&app, &["roles", "show", "reader"]).await;
    assert_eq!(field(&shown, "tokens"), "1", "{shown}");

    let forced = run_on(&app, &["roles", "delete", "reader", "--force"]).await;
    assert_eq!(forced, "deleted role reader; taken from 1 valid token(s)\n");
    assert_eq!(
        run_on(&app, &["token", "access", &token]).await,
        format!(
            "token        {id}\n\
             roles        none\n\
             permissions  none\n\
             effective    none\n"
        )
    );
    for args in [
        vec!["roles", "show", "reader"],
        vec!["roles", "delete", "reader"],
        vec!["roles", "update", "reader", "--add", "a.c"],
    ] {
        let stderr = refused_on(&app, &args).await;
        assert!(
            stderr.contains("error: no role named \"reader\""),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(
        run_on(&app, &["roles", "list"]).await,
        "NAME  TOKENS  PERMISSIONS  DESCRIPTION\n"
    );

    // A role holds at most 1,000 permissions, whether created or changed.
    let grants: Vec<String> = (0..1001).map(|i| format!("--permission=p.{i}")).collect();
    let mut create = vec!["roles", "create", "big"];
    create.extend(grants.iter().map(String::as_str));
    let limit = "error: a role holds at most 1000 permissions";
    let stderr = refused_on(&app, &create).await;
    assert!(stderr.contains(limit), "{stderr}");
    create.pop();
    run_on(&app, &create).await;
    let stderr = refused_on(&app, &["roles", "update", "big", "--add", "p.x"]).await;
    assert!(stderr.contains(limit), "{stderr}");
    let shown = run_on(&app, &["roles", "show", "big", "--json"]).await;
    assert_eq!(
        json_of(&shown)["permissions"].as_array().map(Vec::len),
        Some(1000)
    );
}

/// Invalid role names, permissions and descriptions are usage errors (exit code 2), refused
/// before anything is opened.
#[tokio::test]
async fn invalid_role_names_and_permissions_are_usage_errors() {
    let app = spawn_app().await;
    let url = app.database_url();
    let long = "r".repeat(65);
    let name_rule = "a role name is 1 to 64 characters";
    let grant_rule = "a permission";
    let cases: [(Vec<&str>, &str); 8] = [
        (vec!["roles", "create", "bad name"], name_rule),
        (vec!["roles", "create", &long], name_rule),
        (vec!["roles", "create", ""], name_rule),
        (vec!["roles", "show", "a*"], name_rule),
        (vec!["roles", "delete", "a/b", "--force"], name_rule),
        (
            vec!["roles", "create", "ok", "--permission", "a..b"],
            grant_rule,
        ),
        (
            vec!["roles", "update", "ok", "--add", "a.b*"],
            "* stands only for a whole segment",
        ),
        (vec!["token", "access", "1", "--add-role", "x y"], name_rule),
    ];
    for (args, rule) in cases {
        let output = run(&args, &[("IAM__DATABASE__URL", url.clone())]).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            describe(&output)
        );
        assert!(output.stdout.is_empty(), "{args:?}: {}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(rule), "{args:?}: {stderr}");
    }
    let description = "x".repeat(201);
    let output = run(
        &["roles", "create", "ok", "--description", &description],
        &[("IAM__DATABASE__URL", url)],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert_eq!(
        run_on(&app, &["roles", "list"]).await,
        "NAME  TOKENS  PERMISSIONS  DESCRIPTION\n"
    );
}

#[tokio::test]
async fn token_create_gives_roles_and_permissions_and_refuses_an_unknown_role() {
    let app = spawn_app().await;
    run_on(
        &app,
        &["roles", "create", "pro", "--permission", "projects.*"],
    )
    .await;
    let created = run_on(
        &app,
        &[
            "token",
            "create",
            "--user",
            "12",
            "--name",
            "svc",
            "--role",
            "pro",
            "--permission",
            "billing.read",
        ],
    )
    .await;
    let created: serde_json::Value = serde_json::from_str(&created).expect("JSON");
    assert_eq!(created["ok"], true, "{created}");
    let key = created["data"]["rawApiKey"].as_str().expect("key");
    let record = app
        .tokens
        .token_by_id(
            app.token_id(created["data"]["rawPublicId"].as_str().unwrap())
                .await,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.access.role_texts(), ["pro"]);
    assert_eq!(record.access.permission_texts(), ["billing.read"]);
    assert!(key.starts_with("api_"));
    let refused = refused_on(
        &app,
        &[
            "token", "create", "--user", "12", "--name", "x", "--role", "ghost",
        ],
    )
    .await;
    assert_eq!(refused, "error: no role named \"ghost\"\n");
    assert_eq!(app.valid_token_rows(12).await, 1, "nothing was created");
}
