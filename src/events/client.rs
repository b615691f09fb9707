//! The one way out (STYLE): every webhook request goes through this client, which owns the
//! address check, the timeouts and the size limits. A name is resolved once, by our resolver,
//! which drops every address the policy refuses; the connection goes to an address it kept, so
//! nothing re-resolves between the check and the connect (no DNS rebinding). Redirects are not
//! followed, proxies from the environment are not used, at most 2 KiB of an answer is read.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::address::AddressPolicy;
use crate::domain::webhook::EndpointUrl;

/// At most this much of a receiver's answer is read and kept.
pub const MAX_RESPONSE_BODY: usize = 2048;

/// What a request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Answered {
        status: u16,
        /// Up to [`MAX_RESPONSE_BODY`] bytes of the body, as text.
        body: String,
        /// The receiver's `Retry-After`, when it gave one.
        retry_after: Option<RetryAfter>,
    },
    /// No answer: refused, timed out, a blocked address, a TLS failure. The text names no URL.
    NoAnswer(String),
}

/// A `Retry-After` header: seconds, or an HTTP date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    Seconds(u64),
    At(chrono::DateTime<chrono::Utc>),
}

/// Why an endpoint URL is refused (at creation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("url must use https (webhooks.allow_http is off)")]
    Http,
    #[error("url resolves to {0}, a loopback, private, link-local or reserved address")]
    Blocked(IpAddr),
    #[error("url's host does not resolve")]
    Unresolved,
}

/// The outbound HTTP client of webhooks.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    allow_http: bool,
}

/// Resolves names with the system resolver and keeps only the addresses the policy admits.
struct CheckedResolver {
    policy: Arc<AddressPolicy>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|address| policy.admits(address.ip()))
                .collect();
            if kept.is_empty() {
                return Err("the host resolves to no allowed address".into());
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

impl Outbound {
    pub fn new(
        policy: AddressPolicy,
        allow_http: bool,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckedResolver {
                policy: policy.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("iam-tokens-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            policy,
            allow_http,
        })
    }

    /// Whether an endpoint URL may be used now: its scheme, and every address its host
    /// resolves to (SPEC B12: refused at creation when any is internal).
    pub async fn check(&self, url: &EndpointUrl) -> Result<(), UrlRefused> {
        if !url.is_https() && !self.allow_http {
            return Err(UrlRefused::Http);
        }
        let addresses = match literal(url) {
            Some(ip) => vec![ip],
            None => {
                let host = url.url().host_str().unwrap_or_default();
                let resolved = tokio::time::timeout(
                    Duration::from_secs(5),
                    tokio::net::lookup_host((host, 0)),
                )
                .await;
                match resolved {
                    Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                    _ => return Err(UrlRefused::Unresolved),
                }
            }
        };
        if addresses.is_empty() {
            return Err(UrlRefused::Unresolved);
        }
        match addresses.into_iter().find(|ip| !self.policy.admits(*ip)) {
            Some(blocked) => Err(UrlRefused::Blocked(blocked)),
            None => Ok(()),
        }
    }

    /// POSTs `body` with `headers` to `url` (already checked to be an endpoint URL). An
    /// address literal is checked here; a name by the resolver.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Reply {
        let Ok(parsed) = EndpointUrl::parse(url) else {
            return Reply::NoAnswer("the endpoint URL is not valid".into());
        };
        if !parsed.is_https() && !self.allow_http {
            return Reply::NoAnswer("http is not allowed (webhooks.allow_http)".into());
        }
        if let Some(ip) = literal(&parsed) {
            if !self.policy.admits(ip) {
                return Reply::NoAnswer(format!("{ip} is not an allowed address"));
            }
        }
        let mut map = HeaderMap::with_capacity(headers.len() + 1);
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                map.insert(HeaderName::from_static(name), value);
            }
        }
        map.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let sent = self
            .client
            .post(parsed.url().clone())
            .headers(map)
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(err) => return Reply::NoAnswer(describe(&err)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(retry_after);
        let mut body = Vec::new();
        while body.len() < MAX_RESPONSE_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                // A body cut short or too slow: the status is the answer.
                Ok(None) | Err(_) => break,
            }
        }
        Reply::Answered {
            status,
            body: kept_text(body, MAX_RESPONSE_BODY),
            retry_after,
        }
    }
}

/// The host as an address, when it is one.
fn literal(url: &EndpointUrl) -> Option<IpAddr> {
    match url.url().host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// A failed request in a few words, without its URL (which may carry a receiver's token).
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    let text = match detail.is_empty() {
        true => kind.to_owned(),
        false => format!("{kind}: {detail}"),
    };
    kept_text(text.into_bytes(), 200)
}

/// At most `limit` bytes of `bytes` as text, cut at a character boundary (invalid UTF-8 is
/// replaced first, so the cut never splits a character and never grows the text).
fn kept_text(bytes: Vec<u8>, limit: usize) -> String {
    let text = String::from_utf8_lossy(&bytes);
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(text: &str) -> Option<RetryAfter> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(RetryAfter::Seconds(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    Some(RetryAfter::At(at.with_timezone(&chrono::Utc)))
}

#[cfg(test)]
mod tests {
    use super::kept_text;

    #[test]
    fn kept_text_cuts_at_a_character_boundary() {
        let body = format!("a{}", "é".repeat(2000)).into_bytes();
        let kept = kept_text(body, 2048);
        assert_eq!(kept.len(), 2047);
        assert!(kept.starts_with("aé"));
        assert_eq!(kept_text(b"plain".to_vec(), 3), "pla");
        assert_eq!(kept_text(vec![0xff, b'a'], 10), "\u{fffd}a");
    }
}
