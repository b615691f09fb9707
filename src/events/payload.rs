//! The body we send (Standard Webhooks): `{id, type, timestamp, data}`. `data` carries the ids,
//! the token's name, its owner, the actor and the event's own fields; the token's metadata only
//! for an endpoint that includes it (on events about a token). Never a key, a digest or a
//! secret: none is in an event.

use serde_json::{json, Map, Value};

use crate::domain::webhook::StoredEvent;

/// The `webhook-id` (and body `id`) of an event: stable across attempts.
pub fn message_id(event: &StoredEvent) -> String {
    format!("evt_{}", event.id)
}

pub fn body(event: &StoredEvent, include_metadata: bool) -> Vec<u8> {
    let mut data = Map::new();
    if let Some(token) = event.token_id {
        data.insert("tokenId".into(), json!(token));
    }
    if let Some(user) = event.user_id {
        data.insert("userId".into(), json!(user));
    }
    if let Some(name) = &event.name {
        data.insert("name".into(), json!(name));
    }
    data.insert(
        "actor".into(),
        json!({
            "type": event.actor.kind.as_str(),
            "id": event.actor.id,
            "name": event.actor.name,
        }),
    );
    if let Value::Object(own) = &event.detail {
        for (key, value) in own {
            data.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    if include_metadata && event.token_id.is_some() {
        let metadata = event
            .metadata
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .unwrap_or_else(|| json!({}));
        data.insert("metadata".into(), metadata);
    }
    let body = json!({
        "id": message_id(event),
        "type": event.kind,
        "timestamp": event.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    });
    body.to_string().into_bytes()
}
