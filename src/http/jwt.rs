//! Bearer access tokens of `/api/manage/*`: HS256 JWTs whose `sub` is the numeric user id.

use std::sync::Arc;

use actix_web::HttpRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::crypto::verify;
use jsonwebtoken::{decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::clock::Clock;
use crate::domain::UserId;
use crate::secret::Secret;

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<serde_json::Value>,
    exp: Option<serde_json::Value>,
    nbf: Option<serde_json::Value>,
}

/// Longest access token read: a BFF's JWT is a few hundred bytes; a longer one is refused before
/// any HMAC is computed over it.
const MAX_JWT_BYTES: usize = 8 * 1024;

/// Checks access tokens against the configured secret and the injected clock.
#[derive(Clone)]
pub struct JwtVerifier {
    decoding: DecodingKey,
    encoding: EncodingKey,
    clock: Arc<dyn Clock>,
}

impl JwtVerifier {
    pub fn new(secret: &Secret, clock: Arc<dyn Clock>) -> Self {
        Self {
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            clock,
        }
    }

    /// The user id of a request's `Authorization: Bearer <jwt>`.
    pub fn authenticate(&self, req: &HttpRequest) -> Result<UserId, ApiError> {
        let header = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::MissingBearer)?;
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::MissingBearer)?;
        self.user_id(token)
    }

    /// Validates the size (at most 8 KiB), the header (HS256 only), the signature, an `nbf` not
    /// in the future and the required `exp` against our clock (no leeway, as riavzon's
    /// jsonwebtoken) and a `sub` in the owner id domain (SPEC B3). The claims are parsed only
    /// after the signature holds, and by us, so any JSON in `sub` (even an array) is a
    /// `Malformed token payload` rather than a parse failure.
    pub fn user_id(&self, token: &str) -> Result<UserId, ApiError> {
        if token.len() > MAX_JWT_BYTES {
            return Err(ApiError::BadAccessToken("jwt malformed"));
        }
        let header = decode_header(token).map_err(|_| ApiError::BadAccessToken("jwt malformed"))?;
        if header.alg != Algorithm::HS256 {
            return Err(ApiError::BadAccessToken("invalid algorithm"));
        }
        let (Some((message, signature)), 2) = (token.rsplit_once('.'), token.matches('.').count())
        else {
            return Err(ApiError::BadAccessToken("jwt malformed"));
        };
        let signed = verify(
            signature,
            message.as_bytes(),
            &self.decoding,
            Algorithm::HS256,
        )
        .map_err(|_| ApiError::BadAccessToken("jwt malformed"))?;
        if !signed {
            return Err(ApiError::BadAccessToken("invalid signature"));
        }
        let payload = message.split_once('.').map_or("", |(_, payload)| payload);
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(ApiError::BadAccessToken("jwt malformed"))?;
        // Node jsonwebtoken's order and wording: `nbf`, then `exp`, then our `sub` rule.
        let now = self.clock.now().timestamp() as f64;
        match claims.nbf {
            None => {}
            Some(serde_json::Value::Number(nbf)) if nbf.as_f64().unwrap_or(f64::MAX) > now => {
                return Err(ApiError::BadAccessToken("jwt not active"));
            }
            Some(serde_json::Value::Number(_)) => {}
            Some(_) => return Err(ApiError::BadAccessToken("invalid nbf value")),
        }
        let exp = match claims.exp {
            None => return Err(ApiError::BadAccessToken("jwt must contain an exp claim")),
            Some(serde_json::Value::Number(exp)) => exp.as_f64().unwrap_or(f64::MIN),
            Some(_) => return Err(ApiError::BadAccessToken("invalid exp value")),
        };
        if exp <= now {
            return Err(ApiError::BadAccessToken("jwt expired"));
        }
        // SPEC B3: the owner id domain, one rule at every edge.
        match claims.sub {
            Some(serde_json::Value::String(text)) => {
                UserId::parse(&text).map_err(|_| ApiError::MalformedTokenPayload)
            }
            Some(serde_json::Value::Number(number)) => number
                .as_u64()
                .and_then(|id| UserId::new(id).ok())
                .ok_or(ApiError::MalformedTokenPayload),
            _ => Err(ApiError::MalformedTokenPayload),
        }
    }

    /// Signs an access token for `user_id` valid for `ttl` (the `dev-token` command, tests).
    pub fn issue(
        &self,
        user_id: UserId,
        ttl: std::time::Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        #[derive(Serialize)]
        struct Issued {
            sub: String,
            iat: i64,
            exp: i64,
        }
        let now = self.clock.now().timestamp();
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Issued {
            sub: user_id.to_string(),
            iat: now,
            exp: now.saturating_add(ttl),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }
}
