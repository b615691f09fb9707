//! Bearer access tokens of `/api/manage/*`: HS256 JWTs whose `sub` is the numeric user id.

use std::sync::Arc;

use actix_web::HttpRequest;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::clock::Clock;
use crate::secret::Secret;

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<serde_json::Value>,
    exp: Option<f64>,
}

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
    pub fn authenticate(&self, req: &HttpRequest) -> Result<u64, ApiError> {
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

    /// Validates signature (HS256 only), the required `exp` against our clock (no leeway, as
    /// riavzon's jsonwebtoken), and a numeric `sub`.
    pub fn user_id(&self, token: &str) -> Result<u64, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = false;
        validation.leeway = 0;
        let claims = decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|err| ApiError::BadAccessToken(describe(err.kind())))?
            .claims;
        let exp = claims
            .exp
            .ok_or(ApiError::BadAccessToken("jwt must contain an exp claim"))?;
        if exp <= self.clock.now().timestamp() as f64 {
            return Err(ApiError::BadAccessToken("jwt expired"));
        }
        match claims.sub {
            Some(serde_json::Value::String(text))
                if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) =>
            {
                text.parse().map_err(|_| ApiError::MalformedTokenPayload)
            }
            Some(serde_json::Value::Number(number)) => {
                number.as_u64().ok_or(ApiError::MalformedTokenPayload)
            }
            _ => Err(ApiError::MalformedTokenPayload),
        }
    }

    /// Signs an access token for `user_id` valid for `ttl` (the `dev-token` command, tests).
    pub fn issue(
        &self,
        user_id: u64,
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

/// The messages of Node's jsonwebtoken, which riavzon clients may match on.
fn describe(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidSignature => "invalid signature",
        ErrorKind::ExpiredSignature => "jwt expired",
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => "invalid algorithm",
        ErrorKind::MissingRequiredClaim(_) => "jwt must contain an exp claim",
        ErrorKind::ImmatureSignature => "jwt not active",
        _ => "jwt malformed",
    }
}
