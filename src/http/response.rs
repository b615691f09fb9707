//! JSON responses with the exact content type SPEC A7 requires.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;

pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// `status` with `body` serialized as `application/json; charset=utf-8`.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    match serde_json::to_string(body) {
        Ok(text) => HttpResponse::build(status)
            .insert_header((CONTENT_TYPE, JSON_UTF8))
            .body(text),
        Err(err) => {
            tracing::error!(error = %err, "response serialization failed");
            HttpResponse::InternalServerError()
                .insert_header((CONTENT_TYPE, JSON_UTF8))
                .body(r#"{"error":"Internal server error"}"#)
        }
    }
}
