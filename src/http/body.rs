//! JSON bodies: content type, size and shape, checked in that order. Each route family
//! answers the failures in its own format.

use std::time::Duration;

use actix_web::web::Payload;
use actix_web::HttpRequest;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

/// SPEC A7: management bodies are at most 1 KiB.
pub const MANAGE_BODY_LIMIT: usize = 1024;
/// Admin bodies (metadata included) are at most 16 KiB.
pub const ADMIN_BODY_LIMIT: usize = 16 * 1024;
/// `server.body_timeout` as shipped, for a handler mounted without an `AppState`.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a body was refused.
#[derive(Debug)]
pub enum BodyError {
    /// No `Content-Type: application/json`.
    NotJson,
    /// Empty or only white space.
    Empty,
    /// Over the limit (known from `Content-Length` before reading, or while reading).
    TooLarge { limit: usize },
    /// Not JSON, or not the expected shape: the parser's explanation (never body content),
    /// and the path of the field at fault when the shape is wrong (`permissions`,
    /// `ratelimits[0].limit`).
    Shape { why: String, field: Option<String> },
    /// The whole body did not arrive within `server.body_timeout` (a trickling client).
    TimedOut { after: Duration },
}

/// Reads at most `limit` bytes of a JSON body, within `timeout`, and parses it into `T`.
pub async fn json_body<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: Payload,
    limit: usize,
    timeout: Duration,
) -> Result<T, BodyError> {
    if !is_json(req) {
        return Err(BodyError::NotJson);
    }
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let capacity = declared.unwrap_or(0).min(limit as u64) as usize;
    let body = tokio::time::timeout(timeout, read_at_most(payload, limit, capacity))
        .await
        .map_err(|_| BodyError::TimedOut { after: timeout })??;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Empty);
    }
    let mut json = serde_json::Deserializer::from_slice(&body);
    let parsed = serde_path_to_error::deserialize(&mut json).map_err(|err| {
        // Only a value of the wrong shape is a field's fault; malformed JSON is the body's.
        let shape = err.inner().classify() == serde_json::error::Category::Data;
        let path = err.path().to_string();
        let field = (shape && path != "." && !path.is_empty()).then_some(path);
        let why = describe(err.inner());
        BodyError::Shape { why, field }
    })?;
    // Trailing characters after the value are malformed JSON too.
    json.end().map_err(|err| BodyError::Shape {
        why: describe(&err),
        field: None,
    })?;
    Ok(parsed)
}

async fn read_at_most(
    mut payload: Payload,
    limit: usize,
    capacity: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::with_capacity(capacity);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Shape {
            why: "the body could not be read".into(),
            field: None,
        })?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// serde_json's explanation without the offending input (which may hold a secret).
fn describe(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            format!(
                "malformed JSON at line {} column {}",
                err.line(),
                err.column()
            )
        }
        Category::Data => err.to_string(),
    }
}

/// `application/json`, any case, with or without parameters such as `charset`.
fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}
