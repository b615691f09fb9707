use serde_json::json;

use crate::helpers::{spawn_app, Answer};

#[tokio::test]
async fn health_answers_ok() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.unwrap(), "OK");
}

#[tokio::test]
async fn a_token_created_over_http_verifies_and_counts() {
    let app = spawn_app().await;
    let created = app
        .manage_post("new-token", 7, &json!({"privilege": "full", "name": "ci"}))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let key = created.data()["rawApiKey"].as_str().unwrap().to_owned();
    let verified: Answer = app.verify(&key, "full").await;
    assert_eq!(verified.status, 200);
    assert_eq!(verified.data()["usageCount"], 1);
    let id = verified.data()["tokenId"].as_u64().unwrap();
    assert_eq!(app.usage_and_valid(id).await, (1, true));
}
