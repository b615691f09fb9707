//! Admin scopes enforced (SPEC B9): every admin route behind its scope, the same 401 for every
//! secret that does not authenticate, no escalation, and changes of a credential honoured on
//! its next call (a lookup racing a revocation does not bring it back).

use std::collections::HashMap;
use std::time::Duration;

use iam_tokens::domain::access::scope::CATALOGUE;
use iam_tokens::domain::credential::AdminSecret;
use iam_tokens::http::{route_table, Access};
use reqwest::Method;
use serde_json::{json, Value};

use crate::admin_credentials::{
    credential_actor, get_as, holding, patch, revoke, rows, spawn, stored, stored_with,
    take_secret, unauthorized, view, Stored, CHALLENGE, SUPPORT,
};
use crate::helpers::{admin_as, forbidden};

/// A route's path with every `{parameter}` filled in, under `/api/admin`.
fn concrete(path: &str) -> String {
    path.trim_start_matches("/api/admin")
        .replace("{id}", "1")
        .replace("{user_id}", "1")
        .replace("{name}", "r")
        .replace("{limiter}", "burst_limiter")
        .replace("{key}", "k")
}

#[tokio::test]
async fn every_admin_route_refuses_a_credential_without_its_scope_and_admits_one_with_only_it() {
    let app = spawn().await;
    // Credential 1 holds credentials.write alone: the holder of exactly that scope may revoke
    // it, so what answers DELETE /credentials/1 is the guard, not the escalation rule.
    assert_eq!(stored(&app, "target", &["credentials.write"]).await.id, 1);
    let mut holders: HashMap<&str, (Stored, Vec<Stored>)> = HashMap::new();
    let mut walked = 0;
    for route in route_table() {
        let case = format!("{:?} {}", route.method, route.path);
        if route.access != Access::Admin {
            assert_eq!(route.scope, None, "{case}: only admin routes have a scope");
            continue;
        }
        let scope = route
            .scope
            .unwrap_or_else(|| panic!("{case} declares no scope"));
        // `a|b`: either admits the call (the bulk route).
        let alternatives: Vec<&str> = scope.split('|').collect();
        for one in &alternatives {
            assert!(
                CATALOGUE.contains(one),
                "{case}: {one} is not in the catalogue"
            );
        }
        if !holders.contains_key(scope) {
            let others: Vec<&str> = CATALOGUE
                .into_iter()
                .filter(|s| !alternatives.contains(s))
                .collect();
            let without = stored(&app, &format!("all but {scope}"), &others).await;
            let mut with = Vec::new();
            for one in &alternatives {
                with.push(stored(&app, &format!("only {one}"), &[one]).await);
            }
            holders.insert(scope, (without, with));
        }
        let (without, with) = &holders[scope];
        let method = route.method.expect("an admin route has one method");
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let body = [Method::POST, Method::PUT, Method::PATCH]
            .contains(&method)
            .then(|| json!({}));
        let path = concrete(route.path);
        admin_as(&app, &without.secret, method.clone(), &path, body.as_ref())
            .await
            .assert_is(
                403,
                &forbidden(alternatives[0]),
                &format!("{case} without {scope}"),
            );
        for (one, holder) in alternatives.iter().zip(with) {
            let admitted =
                admin_as(&app, &holder.secret, method.clone(), &path, body.as_ref()).await;
            assert!(
                ![401, 403].contains(&admitted.status),
                "{case} with only {one}: {admitted:?}"
            );
        }
        walked += 1;
    }
    assert!(walked >= 27, "walked {walked} admin routes");
}

#[tokio::test]
async fn malformed_unknown_revoked_and_expired_secrets_all_get_the_same_401() {
    let app = spawn().await;
    let revoked = stored(&app, "revoked", &["roles.read"]).await;
    let body = json!({"name": "expired", "scopes": ["roles.read"], "expires": 60_000});
    let expired = stored_with(&app, &body).await;
    for secret in [&revoked.secret, &expired.secret] {
        assert_eq!(get_as(&app, secret, "/roles").await.status, 200, "at first");
    }
    assert_eq!(revoke(&app, revoked.id).await.status, 200);
    app.clock.advance(Duration::from_secs(61));
    let unknown = AdminSecret::generate().expose().to_owned();
    assert!(AdminSecret::is_well_formed(&unknown));
    let mut wrong_checksum = revoked.secret.clone();
    let last = if wrong_checksum.ends_with('0') {
        "1"
    } else {
        "0"
    };
    wrong_checksum.replace_range(wrong_checksum.len() - 1.., last);
    #[rustfmt::skip]
    let cases = [
        ("malformed",                    "iam_admin_not-a-secret".to_owned()),
        ("a wrong checksum",             wrong_checksum),
        ("well-formed, named by no row", unknown),
        ("revoked",                      revoked.secret),
        ("expired",                      expired.secret),
    ];
    for (case, secret) in cases {
        let answer = get_as(&app, &secret, "/roles").await;
        answer.assert_is(401, &unauthorized(), case);
        assert_eq!(answer.header("www-authenticate"), Some(CHALLENGE), "{case}");
    }
}

#[tokio::test]
async fn a_credential_hands_out_and_changes_only_scopes_it_holds_itself() {
    let app = spawn().await;
    let root = stored_with(&app, &json!({"name": "root", "preset": "root"})).await;
    let helpdesk = stored(&app, "helpdesk", &SUPPORT).await;
    let before = rows(&app).await;
    let as_helpdesk = |method: Method, path: String, body: Option<Value>| {
        let (app, secret) = (&app, helpdesk.secret.clone());
        async move { admin_as(app, &secret, method, &path, body.as_ref()).await }
    };
    let (create, root_path) = (
        "/credentials".to_owned(),
        format!("/credentials/{}", root.id),
    );
    let own_path = format!("/credentials/{}", helpdesk.id);
    let mut more = SUPPORT.to_vec();
    more.push("tokens.create");
    #[rustfmt::skip]
    let refused = [
        ("a scope it lacks",   Method::POST,   create.clone(),
            Some(json!({"name": "minter", "scopes": ["tokens.create"]}))),
        ("root: the first scope it lacks, in catalogue order", Method::POST, create.clone(),
            Some(json!({"name": "root 2", "preset": "root"}))),
        ("change root",        Method::PATCH,  root_path.clone(), Some(json!({"name": "mine"}))),
        ("revoke root",        Method::DELETE, root_path.clone(), None),
        ("raise its own",      Method::PATCH,  own_path.clone(), Some(json!({"scopes": more}))),
    ];
    for (case, method, path, body) in refused {
        let answer = as_helpdesk(method, path, body).await;
        answer.assert_is(403, &forbidden("tokens.create"), case);
    }
    assert_eq!(rows(&app).await, before, "nothing written on refusal");

    let body = json!({"name": "reader", "scopes": ["tokens.read"]});
    let reader = as_helpdesk(Method::POST, create, Some(body)).await;
    let (_, body) = take_secret(&reader, "a scope it holds");
    let mut expected = holding(&app, 3, "reader", "tokens.read");
    expected["createdBy"] = credential_actor(helpdesk.id, "helpdesk");
    assert_eq!(body, expected, "created by the helpdesk");
    assert_eq!(rows(&app).await, (before.0 + 1, before.1 + 1));
    let root_view = view(&app, root.id, "root", json!(["*"]), json!(CATALOGUE));
    let read = app.admin_get(&root_path).await;
    read.assert_is(200, &root_view, "root untouched");
    let own = app.admin_get(&own_path).await;
    let mut own_scopes = SUPPORT.to_vec();
    own_scopes.sort_unstable();
    assert_eq!(
        own.body["scopes"],
        json!(own_scopes),
        "its own scopes untouched"
    );
    assert_eq!(revoke(&app, root.id).await.status, 200, "ops revokes root");
    let again = as_helpdesk(Method::DELETE, root_path.clone(), None).await;
    again.assert_is(
        403,
        &forbidden("tokens.create"),
        "a revoked root is still beyond it",
    );
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn().await;
    let reader = stored(&app, "reader", &["roles.read"]).await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let request = app
            .client
            .get(app.url("/api/admin/roles"))
            .header("authorization", format!("{scheme} {}", reader.secret));
        assert_eq!(app.send(request).await.status, 200, "{scheme}");
    }
}

/// A lookup that read the credential before a revocation committed must not put the active
/// copy back into the cache after the revocation updated it. The lookup's read is started, the
/// revocation answered, and only then is the lookup finished; tried until the read did happen
/// first (the store decides when it runs).
#[tokio::test]
async fn a_lookup_racing_a_revocation_does_not_bring_the_credential_back() {
    use std::future::Future as _;
    use std::task::Poll;
    let app = spawn().await;
    for attempt in 0..50 {
        let raced = stored(&app, &format!("raced {attempt}"), &["roles.read"]).await;
        let mut lookup = std::pin::pin!(app.admins.authenticate(&raced.secret, None));
        let first = std::future::poll_fn(|cx| Poll::Ready(lookup.as_mut().poll(cx))).await;
        if first.is_ready() {
            continue; // done before the revocation started: no race
        }
        assert_eq!(revoke(&app, raced.id).await.status, 200, "revoked");
        if lookup.await.is_err() {
            continue; // it read the row after the revocation: no race
        }
        // It read the credential active and finished after the revocation was answered.
        let after = get_as(&app, &raced.secret, "/roles").await;
        after.assert_is(401, &unauthorized(), "revoked, then accepted again");
        return;
    }
    panic!("the lookup never read before the revocation in 50 attempts");
}

#[tokio::test]
async fn a_change_of_scopes_takes_effect_on_the_next_call() {
    let app = spawn().await;
    let token = app.admin_create(&json!({"userId": 4, "name": "svc"})).await;
    let path = format!("/tokens/{}", token.id);
    let reader = stored(&app, "reader", &["tokens.read", "roles.read"]).await;
    assert_eq!(get_as(&app, &reader.secret, &path).await.status, 200);
    let changed = patch(&app, 1, &json!({"scopes": ["roles.read"]})).await;
    changed.assert_is(200, &holding(&app, 1, "reader", "roles.read"), "changed");
    let refused = get_as(&app, &reader.secret, &path).await;
    refused.assert_is(403, &forbidden("tokens.read"), "at once");
    assert_eq!(get_as(&app, &reader.secret, "/roles").await.status, 200);
}
