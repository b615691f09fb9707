//! JSON bodies of `/api/manage/*`: content type, size and shape, checked in that order.

use actix_web::web::Payload;
use actix_web::HttpRequest;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::ApiError;

/// SPEC A7: management bodies are at most 1 KiB.
pub const MANAGE_BODY_LIMIT: usize = 1024;

/// Why a body was refused; the caller maps `Shape` to its own `Bad Request` envelope.
#[derive(Debug)]
pub enum BodyError {
    /// 403 / 413, answered as they are.
    Refused(ApiError),
    /// Not JSON, or not the expected shape.
    Shape,
}

/// Reads at most `limit` bytes of a JSON body and parses it into `T`.
/// Wrong content type or empty → 403; over `limit` → 413 (before reading when
/// `Content-Length` says so); malformed or mis-shaped → `BodyError::Shape`.
pub async fn json_body<T: DeserializeOwned>(
    req: &HttpRequest,
    mut payload: Payload,
    limit: usize,
) -> Result<T, BodyError> {
    if !is_json(req) {
        return Err(BodyError::Refused(ApiError::NotAllowed));
    }
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(BodyError::Refused(ApiError::PayloadTooLarge { limit }));
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit as u64) as usize);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Shape)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::Refused(ApiError::PayloadTooLarge { limit }));
        }
        body.extend_from_slice(&chunk);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Refused(ApiError::NotAllowed));
    }
    serde_json::from_slice(&body).map_err(|_| BodyError::Shape)
}

/// `application/json`, any case, with or without parameters such as `charset`.
fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}
