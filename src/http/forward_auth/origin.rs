//! The original request a gateway asks about: its method, path and query, host and client IP.
//! Forwarded headers (`X-Forwarded-Method/-Uri/-Host`, `X-Original-Method/-URI`, the
//! `X-Forwarded-For` chain, `X-Real-IP`) are believed only from a peer in
//! `server.trusted_proxies`; from any other peer the request's own values are used, so a client
//! cannot forge them. Envoy sends the original path as the tail of ours.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

use super::super::client_ip::client_ip;
use crate::domain::forward_auth::canonical_path;
use crate::domain::ip::normalize;

/// The request the gateway asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Upper case.
    pub method: String,
    /// Starts with `/`; without the query.
    pub path: String,
    pub query: Option<String>,
    /// Lower case, without the port.
    pub host: String,
    pub client: Option<IpAddr>,
    /// The peer is in `server.trusted_proxies`: its forwarded headers were believed.
    pub trusted: bool,
}

/// Why the original request cannot be read (a 400 `BAD_REQUEST` naming the header).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    #[error("{0} is sent more than once, or disagrees with its other spelling")]
    Conflicting(&'static str),
    #[error("{0} is not valid")]
    Invalid(&'static str),
}

impl OriginError {
    /// The header at fault.
    pub fn header(&self) -> &'static str {
        match self {
            Self::Conflicting(name) | Self::Invalid(name) => name,
        }
    }
}

/// At most this long, a forwarded URI or host.
const MAX_URI: usize = 8192;

/// One header's single value: `None` when absent, an error when repeated or not text.
fn single<'r>(req: &'r HttpRequest, name: &'static str) -> Result<Option<&'r str>, OriginError> {
    let mut values = req.headers().get_all(name);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OriginError::Conflicting(name));
    }
    first
        .to_str()
        .map(|text| Some(text.trim()))
        .map_err(|_| OriginError::Invalid(name))
}

/// The value of either spelling; both present and different is a conflict.
fn either<'r>(
    req: &'r HttpRequest,
    names: [&'static str; 2],
) -> Result<Option<&'r str>, OriginError> {
    match (single(req, names[0])?, single(req, names[1])?) {
        (Some(a), Some(b)) if a != b => Err(OriginError::Conflicting(names[0])),
        (a, b) => Ok(a.or(b)),
    }
}

/// The original request. `tail`: what followed `/api/forward-auth/` in our path (Envoy).
pub fn origin(
    req: &HttpRequest,
    trusted: &[IpNet],
    tail: Option<&str>,
) -> Result<Origin, OriginError> {
    let peer_trusted = req
        .peer_addr()
        .map(|peer| normalize(peer.ip()))
        .is_some_and(|peer| trusted.iter().any(|net| net.contains(&peer)));
    let (method, uri, host) = match peer_trusted {
        true => (
            either(req, ["x-forwarded-method", "x-original-method"])?,
            either(req, ["x-forwarded-uri", "x-original-uri"])?,
            single(req, "x-forwarded-host")?,
        ),
        false => (None, None, None),
    };
    let method = match method {
        Some(method) => {
            let ok = !method.is_empty()
                && method.len() <= 16
                && method.bytes().all(|b| b.is_ascii_alphabetic());
            if !ok {
                return Err(OriginError::Invalid("x-forwarded-method"));
            }
            method.to_ascii_uppercase()
        }
        None => req.method().as_str().to_owned(),
    };
    let uri = match (uri, tail) {
        (Some(uri), _) => uri.to_owned(),
        (None, Some(tail)) => match req.query_string() {
            "" => format!("/{tail}"),
            query => format!("/{tail}?{query}"),
        },
        (None, None) => req.uri().to_string(),
    };
    if !uri.starts_with('/') || uri.starts_with("//") || uri.len() > MAX_URI {
        return Err(OriginError::Invalid("x-forwarded-uri"));
    }
    let (path, query) = match uri.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (uri.as_str(), None),
    };
    // The one spelling rules are matched against (`%61dmin` is `admin`); ambiguous ones refused.
    let path = canonical_path(path)
        .map_err(|_| OriginError::Invalid("x-forwarded-uri"))?
        .into_owned();
    let host = match host {
        Some(host) => host.to_owned(),
        // The request's own host: actix's `connection_info` would believe `X-Forwarded-Host`
        // from anyone.
        None => match req.uri().host() {
            Some(host) => host.to_owned(),
            None => single(req, "host")?.unwrap_or_default().to_owned(),
        },
    };
    let host = host_only(&host).ok_or(OriginError::Invalid("x-forwarded-host"))?;
    let client = match peer_trusted {
        true if req.headers().contains_key("x-forwarded-for") => client_ip(req, trusted),
        true => match single(req, "x-real-ip")? {
            Some(ip) => Some(normalize(
                ip.parse().map_err(|_| OriginError::Invalid("x-real-ip"))?,
            )),
            None => client_ip(req, trusted),
        },
        false => client_ip(req, trusted),
    };
    Ok(Origin {
        method,
        path,
        query,
        host,
        client,
        trusted: peer_trusted,
    })
}

/// A host without its port, lower case; `None` when it is not a host.
fn host_only(host: &str) -> Option<String> {
    let name = match host.strip_prefix('[') {
        Some(v6) => &host[..v6.find(']')? + 2],
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            match port.bytes().all(|b| b.is_ascii_digit()) {
                true => name,
                false => host,
            }
        }),
    };
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
    ok.then(|| name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn trusted() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap()]
    }

    fn from(peer: &str) -> TestRequest {
        TestRequest::get()
            .uri("/api/forward-auth")
            .peer_addr(format!("{peer}:5000").parse().unwrap())
            .insert_header(("host", "auth.internal:8080"))
    }

    #[test]
    fn a_trusted_gateway_names_the_original_request() {
        let req = from("10.0.0.2")
            .insert_header(("x-forwarded-method", "post"))
            .insert_header(("x-forwarded-uri", "/v1/search?q=a"))
            .insert_header(("x-forwarded-host", "API.example.com:443"))
            .insert_header(("x-forwarded-for", "203.0.113.7, 10.0.0.9"))
            .to_http_request();
        let seen = origin(&req, &trusted(), None).unwrap();
        let expected = Origin {
            method: "POST".into(),
            path: "/v1/search".into(),
            query: Some("q=a".into()),
            host: "api.example.com".into(),
            client: Some("203.0.113.7".parse().unwrap()),
            trusted: true,
        };
        assert_eq!(seen, expected);
        let nginx = from("10.0.0.2")
            .insert_header(("x-original-method", "DELETE"))
            .insert_header(("x-original-uri", "/keys/7"))
            .insert_header(("x-real-ip", "198.51.100.4"))
            .to_http_request();
        let seen = origin(&nginx, &trusted(), None).unwrap();
        assert_eq!(
            (
                seen.method.as_str(),
                seen.path.as_str(),
                seen.host.as_str(),
                seen.client
            ),
            (
                "DELETE",
                "/keys/7",
                "auth.internal",
                Some("198.51.100.4".parse().unwrap())
            )
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_forge_the_original_request() {
        let req = from("192.0.2.50")
            .insert_header(("x-forwarded-method", "DELETE"))
            .insert_header(("x-forwarded-uri", "/admin"))
            .insert_header(("x-forwarded-host", "victim.example.com"))
            .insert_header(("x-forwarded-for", "127.0.0.1"))
            .insert_header(("x-real-ip", "127.0.0.1"))
            .to_http_request();
        let seen = origin(&req, &trusted(), None).unwrap();
        let expected = Origin {
            method: "GET".into(),
            path: "/api/forward-auth".into(),
            query: None,
            host: "auth.internal".into(),
            client: Some("192.0.2.50".parse().unwrap()),
            trusted: false,
        };
        assert_eq!(seen, expected);
    }

    #[test]
    fn envoy_sends_the_original_path_as_our_tail() {
        let req = TestRequest::post()
            .uri("/api/forward-auth/v1/items?x=1")
            .peer_addr("10.0.0.3:5000".parse().unwrap())
            .insert_header(("host", "shop.example.com"))
            .to_http_request();
        let seen = origin(&req, &trusted(), Some("v1/items")).unwrap();
        assert_eq!(
            (
                seen.method.as_str(),
                seen.path.as_str(),
                seen.query.as_deref(),
                seen.host.as_str()
            ),
            ("POST", "/v1/items", Some("x=1"), "shop.example.com")
        );
    }

    #[test]
    fn conflicting_repeated_or_malformed_forwarded_headers_are_refused_naming_them() {
        let cases: [(&[(&str, &str)], OriginError); 6] = [
            (
                &[("x-forwarded-method", "GET"), ("x-original-method", "POST")],
                OriginError::Conflicting("x-forwarded-method"),
            ),
            (
                &[("x-forwarded-uri", "/a"), ("x-forwarded-uri", "/b")],
                OriginError::Conflicting("x-forwarded-uri"),
            ),
            (
                &[("x-forwarded-uri", "http://evil/")],
                OriginError::Invalid("x-forwarded-uri"),
            ),
            (
                &[("x-forwarded-uri", "//evil/x")],
                OriginError::Invalid("x-forwarded-uri"),
            ),
            (
                &[("x-forwarded-method", "G E T")],
                OriginError::Invalid("x-forwarded-method"),
            ),
            (
                &[("x-forwarded-host", "a b")],
                OriginError::Invalid("x-forwarded-host"),
            ),
        ];
        for (headers, expected) in cases {
            let mut req = from("10.0.0.2");
            for header in headers {
                req = req.append_header(*header);
            }
            let req = req.to_http_request();
            assert_eq!(
                origin(&req, &trusted(), None),
                Err(expected.clone()),
                "{headers:?}"
            );
        }
    }
}
