//! A stored credential revoked or narrowed on one instance is refused by every other within
//! 100 ms (SPEC B6, B9), on one Redis and on a Redis Cluster.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::audit_trail::credential;
use crate::helpers::{admin_as, admin_error, forbidden, ops_admin, TestApp};
use crate::shared_instances::{eventually, instances, Shared};
// ---- Credentials changed on one instance, everywhere within 100 ms ----

/// How long another instance may go on honouring a changed credential (SPEC B6, B9).
const WITHIN: Duration = Duration::from_millis(100);

/// Polls `app` until `/api/admin/audit` with `secret` answers `status`, from `answered` (when
/// the change was answered) for at most [`WITHIN`]; asserts it did in time.
async fn refused_in_time(app: &TestApp, name: &str, secret: &str, status: u16, answered: Instant) {
    let left = WITHIN.saturating_sub(answered.elapsed());
    let seen = eventually(left, || async {
        admin_as(app, secret, Method::GET, "/audit?limit=1", None)
            .await
            .status
            == status
    })
    .await;
    let elapsed = answered.elapsed();
    assert!(
        seen.is_some() && elapsed < WITHIN,
        "{name} answered {status} only after {elapsed:?}"
    );
}

async fn a_revoked_credential_is_refused_everywhere_within_100_ms(shared: Shared) {
    crate::store_independent!();
    let fleet = instances(3, shared, ops_admin).await;
    let [a, b, c] = &fleet.apps[..] else {
        unreachable!()
    };
    let (id, secret) = credential(a, "ci", json!({"preset": "root"})).await;
    for (name, app) in [("A", a), ("B", b), ("C", c)] {
        let answer = admin_as(app, &secret, Method::GET, "/audit?limit=1", None).await;
        assert_eq!(
            answer.status, 200,
            "{name} takes it (and caches it): {answer:?}"
        );
    }
    let path = format!("/credentials/{id}");
    let revoked = a.send(a.admin_request(Method::DELETE, &path)).await;
    let answered = Instant::now();
    assert_eq!(
        (revoked.status, &revoked.body["active"]),
        (200, &json!(false)),
        "{revoked:?}"
    );
    let message = "a valid admin credential is required (Authorization: Bearer <secret>)";
    let refused = admin_as(a, &secret, Method::GET, "/audit?limit=1", None).await;
    refused.assert_is(
        401,
        &admin_error("unauthorized", message, None),
        "A, at once",
    );
    for (name, app) in [("B", b), ("C", c)] {
        refused_in_time(app, name, &secret, 401, answered).await;
    }
}

async fn a_narrowed_credential_is_refused_everywhere_within_100_ms(shared: Shared) {
    crate::store_independent!();
    let fleet = instances(3, shared, ops_admin).await;
    let [a, b, c] = &fleet.apps[..] else {
        unreachable!()
    };
    let scopes = json!({"scopes": ["audit.read", "tokens.read"]});
    let (id, secret) = credential(a, "auditor", scopes).await;
    for (name, app) in [("A", a), ("B", b), ("C", c)] {
        let answer = admin_as(app, &secret, Method::GET, "/audit?limit=1", None).await;
        assert_eq!(
            answer.status, 200,
            "{name} takes it (and caches it): {answer:?}"
        );
    }
    let path = format!("/credentials/{id}");
    let narrowed = a
        .admin_json(Method::PATCH, &path, &json!({"scopes": ["tokens.read"]}))
        .await;
    let answered = Instant::now();
    assert_eq!(
        (narrowed.status, &narrowed.body["scopes"]),
        (200, &json!(["tokens.read"])),
        "{narrowed:?}"
    );
    let refused = admin_as(a, &secret, Method::GET, "/audit?limit=1", None).await;
    refused.assert_is(403, &forbidden("audit.read"), "A, at once");
    for (name, app) in [("B", b), ("C", c)] {
        refused_in_time(app, name, &secret, 403, answered).await;
        let answer = admin_as(app, &secret, Method::GET, "/audit", None).await;
        answer.assert_is(403, &forbidden("audit.read"), name);
        let kept = admin_as(app, &secret, Method::GET, "/users/1/tokens", None).await;
        assert_eq!(kept.status, 200, "{name}: tokens.read is kept: {kept:?}");
    }
}

#[tokio::test]
async fn a_revoked_credential_is_refused_everywhere_within_100_ms_on_one_redis() {
    a_revoked_credential_is_refused_everywhere_within_100_ms(Shared::Single).await
}

#[tokio::test]
async fn a_revoked_credential_is_refused_everywhere_within_100_ms_on_a_redis_cluster() {
    a_revoked_credential_is_refused_everywhere_within_100_ms(Shared::Cluster).await
}

#[tokio::test]
async fn a_narrowed_credential_is_refused_everywhere_within_100_ms_on_one_redis() {
    a_narrowed_credential_is_refused_everywhere_within_100_ms(Shared::Single).await
}

#[tokio::test]
async fn a_narrowed_credential_is_refused_everywhere_within_100_ms_on_a_redis_cluster() {
    a_narrowed_credential_is_refused_everywhere_within_100_ms(Shared::Cluster).await
}
