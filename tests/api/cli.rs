//! The `iam-tokens` command line, run as a user would: create, list and revoke tokens, mint a
//! development access token, migrate, and check the configuration.

use std::process::{Command, Output};

use iam_tokens::domain::Privilege;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

/// Runs the binary with `args`, with no inherited `IAM_*` or `RUST_LOG` variables, from a
/// directory without a `config.toml`, plus the given environment.
async fn run(args: &[&str], env: &[(&str, String)]) -> Output {
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
            "admin-token new",
            "bans",
            "bans lift",
            "bans list",
            "config",
            "config check",
            "copy",
            "dev-token",
            "migrate",
            "serve",
            "token",
            "token create",
            "token list",
            "token revoke",
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
