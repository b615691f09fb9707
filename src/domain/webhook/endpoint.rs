//! A webhook endpoint: where events go, which ones, and how they are signed.

use chrono::{DateTime, Utc};

use super::{EndpointSecret, EventFilter};

/// At most this many characters of URL.
pub const MAX_URL: usize = 2048;
/// At most this many characters of description.
pub const MAX_DESCRIPTION: usize = 200;

/// An endpoint's URL as written: `https` (or `http`, which only `webhooks.allow_http`
/// admits), a host, no credentials, no fragment. Where it resolves is checked by the one
/// outbound client (`events/client.rs`), at creation and at every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(url::Url);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointUrlError {
    #[error("url is an absolute http(s) URL of at most {MAX_URL} characters")]
    Shape,
    #[error("url must use https")]
    Scheme,
    #[error("url must not carry credentials")]
    Credentials,
    #[error("url must not have a fragment")]
    Fragment,
}

impl EndpointUrl {
    pub fn parse(text: &str) -> Result<Self, EndpointUrlError> {
        if text.len() > MAX_URL {
            return Err(EndpointUrlError::Shape);
        }
        let url = url::Url::parse(text).map_err(|_| EndpointUrlError::Shape)?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(EndpointUrlError::Scheme);
        }
        if url.host().is_none() {
            return Err(EndpointUrlError::Shape);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EndpointUrlError::Credentials);
        }
        if url.fragment().is_some() {
            return Err(EndpointUrlError::Fragment);
        }
        Ok(Self(url))
    }

    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// A description of at most [`MAX_DESCRIPTION`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDescription(String);

impl WebhookDescription {
    pub fn parse(text: &str) -> Option<Self> {
        (text.chars().count() <= MAX_DESCRIPTION).then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why an endpoint is not sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisabledReason {
    /// An admin disabled it.
    Manual,
    /// It answered 410 Gone.
    Gone,
    /// Five days of failed attempts.
    Failing,
}

impl DisabledReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Gone => "gone",
            Self::Failing => "failing",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Manual, Self::Gone, Self::Failing]
            .into_iter()
            .find(|reason| reason.as_str() == text)
    }
}

/// An endpoint to create.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: EndpointUrl,
    pub description: Option<WebhookDescription>,
    pub events: EventFilter,
    pub include_metadata: bool,
    pub secret: EndpointSecret,
}

/// A change of an endpoint: each `Some` replaces its field (`description: Some(None)` removes
/// it). Enabling clears the reason and the failure streak.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<EndpointUrl>,
    pub description: Option<Option<WebhookDescription>>,
    pub events: Option<EventFilter>,
    pub include_metadata: Option<bool>,
    pub enabled: Option<bool>,
}

/// An endpoint as stored.
#[derive(Debug, Clone)]
pub struct EndpointRecord {
    pub id: u64,
    pub url: String,
    pub description: Option<String>,
    pub events: EventFilter,
    pub include_metadata: bool,
    pub secret: EndpointSecret,
    /// The secret before the last rotation, which still signs until `previous_until`.
    pub previous_secret: Option<EndpointSecret>,
    pub previous_until: Option<DateTime<Utc>>,
    pub enabled: bool,
    pub disabled_reason: Option<DisabledReason>,
    /// When the current run of failed attempts started.
    pub failing_since: Option<DateTime<Utc>>,
    /// The newest event when it was created: it receives only events after it.
    pub after_event: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EndpointRecord {
    /// The secrets that sign a request sent at `now`: the current one, and the previous one
    /// during its overlap.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&EndpointSecret> {
        let mut secrets = vec![&self.secret];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_until) {
            if now < until {
                secrets.push(previous);
            }
        }
        secrets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_absolute_http_without_credentials() {
        assert!(EndpointUrl::parse("https://hooks.example.com/in?x=1")
            .unwrap()
            .is_https());
        assert!(!EndpointUrl::parse("http://127.0.0.1:9/")
            .unwrap()
            .is_https());
        let cases = [
            ("ftp://example.com/", EndpointUrlError::Scheme),
            ("file:///etc/passwd", EndpointUrlError::Scheme),
            ("/relative", EndpointUrlError::Shape),
            (
                "https://user:pw@example.com/",
                EndpointUrlError::Credentials,
            ),
            ("https://example.com/#frag", EndpointUrlError::Fragment),
        ];
        for (text, err) in cases {
            assert_eq!(EndpointUrl::parse(text), Err(err), "{text}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        assert_eq!(EndpointUrl::parse(&long), Err(EndpointUrlError::Shape));
    }
}
