//! The Standard Webhooks signature: `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`
//! under each secret that signs (two during a rotation's overlap), space-separated.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::webhook::EndpointSecret;

/// The `webhook-signature` header's value; secrets that are not valid base64 are skipped (a
/// stored secret is checked when it is read, so none is).
pub fn signature(secrets: &[&EndpointSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signatures = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let Ok(key) = secret.key() else { continue };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
            continue;
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        signatures.push(format!(
            "v1,{}",
            STANDARD.encode(mac.finalize().into_bytes())
        ));
    }
    signatures.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signs_the_specifications_example() {
        let secret =
            EndpointSecret::from_stored("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()).unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&[&secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
