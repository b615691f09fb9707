//! Headers every response carries, and the request id.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::Error;

pub const REQUEST_ID: &str = "x-request-id";

/// `Cache-Control`, `Pragma`, `Expires` and `X-Frame-Options` on every response.
pub fn common_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Cache-Control", "no-cache, private, max-age=0"))
        .add(("Pragma", "no-cache"))
        .add(("Expires", "0"))
        .add(("X-Frame-Options", "DENY"))
}

/// Echoes a sane incoming `X-Request-Id` (≤ 128 visible ASCII characters) or makes one, puts it
/// on the response, and logs the request once — method, path and status, never headers or query
/// values, which may carry secrets.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = req.method().clone();
    let path = req.path().to_owned();
    let started = std::time::Instant::now();
    let mut res = next.call(req).await?;
    tracing::info!(
        request_id = %id,
        %method,
        path = %path.chars().take(200).collect::<String>(),
        status = res.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), value);
    }
    Ok(res)
}
