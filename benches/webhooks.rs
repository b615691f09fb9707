//! Webhook delivery (SPEC B12, issue 29), on MariaDB and on SQLite, to a local receiver (an
//! actix server on 127.0.0.1 answering 204), with the shipped dispatcher settings (poll every
//! 100 ms, 16 attempts in flight, claims of 100):
//! 1. Throughput: E events already in the outbox, then the dispatcher started; events per second
//!    until the receiver holds all of them (target ≥ 500/s).
//! 2. Commit to delivery: token creations (each writes its `token.created` in its transaction),
//!    one every 20 ms while the dispatcher runs; for each, the time from the creation's return
//!    (its commit) to the receiver getting the event: p50, p90, p99 (target p50 ≤ 200 ms).
//!
//! Run: `cargo bench --bench webhooks` (under `cargo test`, 100 events and 20 creations).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use dashmap::DashMap;
use iam_tokens::config::WebhookSettings;
use iam_tokens::domain::webhook::{
    EndpointSecret, EndpointUrl, EventFilter, EventType, NewEndpoint, OutboxEvent,
};
use iam_tokens::domain::{Actor, Privilege, TokenName, UserId};
use iam_tokens::events::Events;
use iam_tokens::service::CreateToken;
use iam_tokens::store::{Audit, TokenStore};
use iam_tokens::telemetry::Metrics;
use iam_tokens::{Clock, SystemClock, TokenService};
#[path = "support/stores.rs"]
mod stores;

fn benching() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// When each token's event arrived (by token id), and how many events arrived.
#[derive(Default)]
struct Arrivals {
    by_token: DashMap<u64, Instant>,
    count: std::sync::atomic::AtomicUsize,
}

async fn receive(body: web::Bytes, arrivals: web::Data<Arc<Arrivals>>) -> HttpResponse {
    let at = Instant::now();
    if let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) {
        if let Some(token) = event["data"]["tokenId"].as_u64() {
            arrivals.by_token.insert(token, at);
        }
    }
    arrivals
        .count
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    HttpResponse::NoContent().finish()
}

/// The receiver's port.
fn start_receiver(arrivals: Arc<Arrivals>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let data = web::Data::new(arrivals);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(receive))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    port
}

fn percentile(samples: &mut [Duration], q: f64) -> f64 {
    samples.sort();
    samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3
}

async fn wait_until(arrivals: &Arrivals, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while arrivals.count.load(std::sync::atomic::Ordering::SeqCst) < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} events arrived",
            arrivals.count.load(std::sync::atomic::Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn on_store(name: &str, store: Arc<dyn TokenStore>) {
    let (events_n, creations) = match benching() {
        true => (5_000, 300),
        false => (100, 20),
    };
    let arrivals = Arc::new(Arrivals::default());
    let port = start_receiver(arrivals.clone());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let audit = Audit {
        actor: Actor::default(),
        at: clock.now(),
    };
    let endpoint = NewEndpoint {
        url: EndpointUrl::parse(&format!("http://127.0.0.1:{port}/hook")).unwrap(),
        description: None,
        events: EventFilter::parse(&["*"]).unwrap(),
        include_metadata: false,
        secret: EndpointSecret::generate(),
    };
    store.create_endpoint(&endpoint, &audit).await.unwrap();

    // 1. Throughput: the outbox filled first, then the dispatcher started.
    for i in 0..events_n {
        let event = OutboxEvent {
            kind: EventType::RoleUpdated,
            dedupe_key: Some(format!("bench:{i}")),
            token_id: None,
            user_id: None,
            actor: Actor::default(),
            detail: serde_json::json!({ "role": "bench" }),
            at: clock.now(),
        };
        store.write_threshold_event(&event).await.unwrap();
    }
    let settings = WebhookSettings {
        allow_http: true,
        allow_cidrs: vec!["127.0.0.1/32".parse().unwrap()],
        ..WebhookSettings::default()
    };
    let events = Arc::new(Events::new(
        store.clone(),
        clock.clone(),
        settings,
        Metrics::disabled(),
    ));
    let started = Instant::now();
    let dispatcher = tokio::spawn(events.clone().run_dispatcher());
    wait_until(&arrivals, events_n).await;
    let took = started.elapsed();
    println!(
        "webhooks, {name}: {events_n} events delivered in {:.2} s = {:.0} events/s",
        took.as_secs_f64(),
        events_n as f64 / took.as_secs_f64()
    );

    // 2. Commit to delivery, one creation every 20 ms.
    let service = TokenService::new(store.clone(), clock.clone(), 1_000_000);
    let mut committed = Vec::with_capacity(creations);
    for i in 0..creations {
        let owner = UserId::new(1 + (i % 50) as u64).unwrap();
        let request = CreateToken::new(owner, Privilege::Full, TokenName::parse("bench").unwrap());
        let created = service.create(request).await;
        let at = Instant::now();
        let token = created.data().expect("created").token_id;
        committed.push((token, at));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_until(&arrivals, events_n + creations).await;
    let mut latencies: Vec<Duration> = committed
        .iter()
        .map(|(token, at)| *arrivals.by_token.get(token).expect("delivered") - *at)
        .collect();
    println!(
        "webhooks, {name}: commit to delivery over {creations} creations: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.9),
        percentile(&mut latencies, 0.99)
    );
    dispatcher.abort();
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for bench in [stores::mysql(8).await, stores::sqlite().await] {
            on_store(bench.name, bench.store.clone()).await;
            bench.remove().await;
        }
    });
}
