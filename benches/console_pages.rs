//! How long the console's pages take with many tokens (SPEC B14, issue 31): an application on
//! a fresh store filled with 100,000 tokens (2,000 under `cargo test`), signed in through the
//! form, then each page asked for in turn on loopback, one request at a time. The figure is
//! the time from sending the request to the last byte of the page, on this machine, so it is
//! the server's time plus one loopback round trip.
//! Run: `cargo bench --bench console_pages`; `STORES=sqlite` or `STORES=mysql` picks one.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use iam_tokens::domain::{Metadata, Privilege, TokenName, UserId};
use iam_tokens::service::CreateToken;
use iam_tokens::{Application, Settings};
use mysql_async::prelude::*;
use sha2::Digest as _;

const SERVER: &str = "mysql://root@127.0.0.1:3306";
const SECRET: &str = "iam_admin_console_bench_0123456789abcdef";
const SAMPLES: usize = 50;

fn tokens_wanted() -> usize {
    match std::env::args().any(|arg| arg == "--bench") {
        true => 100_000,
        false => 2_000,
    }
}

fn settings(url: &str) -> Settings {
    let mut settings = Settings::defaults().expect("defaults");
    settings.server.port = 0;
    settings.server.workers = 1;
    settings.database.url = iam_tokens::secret::Secret::new(url.to_owned());
    settings.rate_limiters.enabled = false;
    settings.api_tokens.limit_tokens_per_user = 100;
    settings.auth.admin_tokens = vec![iam_tokens::config::AdminTokenSettings {
        name: "bench".into(),
        digest: hex::encode(sha2::Sha256::digest(SECRET)),
    }];
    settings
}

/// p50 and p90 of `samples`, in ms.
fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    format!("p50 {:.1} ms, p90 {:.1} ms", at(0.5), at(0.9))
}

/// The value of `name=` in the answer's `Set-Cookie` headers.
fn cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .expect("cookie")
        .to_owned()
}

async fn run(name: &str, url: &str) {
    let app = Application::build(settings(url))
        .await
        .expect("application");
    let base = format!("http://127.0.0.1:{}", app.port());
    let tokens = app.tokens().clone();
    tokio::spawn(app.run_until_stopped());

    let wanted = tokens_wanted();
    let started = Instant::now();
    let creations = (0..wanted).map(|i| {
        let tokens = tokens.clone();
        async move {
            let owner = UserId::new(1 + (i / 50) as u64).unwrap();
            let name = TokenName::parse(&format!("key-{i}")).unwrap();
            let plan = if i % 2 == 0 { "pro" } else { "free" };
            let metadata = Metadata::parse(&serde_json::json!({"plan": plan})).unwrap();
            let request = CreateToken::new(owner, Privilege::Full, name).metadata(metadata);
            assert!(tokens.create(request).await.is_ok(), "created");
        }
    });
    futures_util::stream::iter(creations)
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    println!(
        "console pages, {name}: {wanted} tokens made in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client
        .get(format!("{base}/console/sign-in"))
        .send()
        .await
        .unwrap();
    let csrf = cookie(&form, "iam_console_sign_in");
    let signed = client
        .post(format!("{base}/console/sign-in"))
        .header("cookie", format!("iam_console_sign_in={csrf}"))
        .form(&[("csrf", csrf.as_str()), ("secret", SECRET)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status().as_u16(), 303, "signed in");
    let session = format!("iam_console={}", cookie(&signed, "iam_console"));

    let middle = wanted / 2;
    let pages = [
        (
            "tokens, first page".to_owned(),
            "/console/tokens".to_owned(),
        ),
        (
            "tokens, a page deep in the list".to_owned(),
            format!("/console/tokens?cursor={middle}"),
        ),
        (
            "tokens of one owner".to_owned(),
            format!("/console/tokens?q=user%3A{}", 1 + middle / 50),
        ),
        (
            "tokens by metadata".to_owned(),
            "/console/tokens?meta=plan%3Dpro".to_owned(),
        ),
        ("a token".to_owned(), format!("/console/tokens/{middle}")),
    ];
    for (what, path) in pages {
        let mut samples = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let started = Instant::now();
            let answer = client
                .get(format!("{base}{path}"))
                .header("cookie", &session)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status().as_u16(), 200, "{path}");
            answer.bytes().await.unwrap();
            samples.push(started.elapsed());
        }
        println!("console pages, {name}: {what}: {}", percentiles(samples));
    }
}

fn main() {
    let stores = std::env::var("STORES").unwrap_or_else(|_| "sqlite mysql".to_owned());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for store in stores.split_whitespace() {
            let db = format!("iam_bench_{}", uuid::Uuid::new_v4().simple());
            match store {
                "mysql" => {
                    let admin = mysql_async::Pool::new(SERVER);
                    let mut conn = admin.get_conn().await.expect("MariaDB");
                    conn.query_drop(format!("CREATE DATABASE `{db}`"))
                        .await
                        .unwrap();
                    run("MySQL (MariaDB)", &format!("{SERVER}/{db}")).await;
                    conn.query_drop(format!("DROP DATABASE `{db}`"))
                        .await
                        .unwrap();
                }
                _ => {
                    let dir = std::env::temp_dir().join(&db);
                    std::fs::create_dir_all(&dir).unwrap();
                    let url = format!("sqlite://{}", dir.join("bench.db").display());
                    run("SQLite", &url).await;
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
        }
    });
}
