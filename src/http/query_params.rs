//! The query parameters of the public verify route, read on every verification: `privilege`
//! and the optional `permissions` query, whose parsed form is kept in a small bounded map keyed
//! by its text as sent (callers ask the same few queries again and again; parsing one is most of
//! what a query costs a verification).

use std::borrow::Cow;
use std::sync::Arc;

use dashmap::DashMap;

use crate::domain::access::{Query, QueryError};
use crate::domain::Privilege;

/// `privilege` (once, required) and the raw `permissions` value (at most once).
#[derive(Debug, PartialEq)]
pub(super) struct VerifyParams<'q> {
    pub(super) privilege: Privilege,
    /// As sent: still percent-encoded (the query cache's key).
    pub(super) permissions: Option<&'q str>,
    /// Analytics tags, `tag.<key>=<value>` decoded (SPEC B11); empty (no allocation) without.
    pub(super) tags: Vec<(Cow<'q, str>, Cow<'q, str>)>,
}

/// A URL query component decoded (`+` is a space); borrowed when there is nothing to decode.
pub(super) fn decoded(raw: &str) -> Cow<'_, str> {
    if !raw.contains(['%', '+']) {
        return Cow::Borrowed(raw);
    }
    let spaced = raw.replace('+', " ");
    Cow::Owned(
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// The parameters, or `None` when `privilege` is missing, repeated or unknown or `permissions`
/// is repeated. Pairs are split by hand (no allocation unless something is encoded): this runs
/// on every verification.
pub(super) fn verify_params(query: &str) -> Option<VerifyParams<'_>> {
    let (mut privilege, mut permissions, mut tags) = (None, None, Vec::new());
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decoded(name);
        let slot = match name.as_ref() {
            "privilege" => &mut privilege,
            "permissions" => &mut permissions,
            tag if tag.starts_with("tag.") => {
                let key = match name {
                    Cow::Borrowed(name) => Cow::Borrowed(&name[4..]),
                    Cow::Owned(name) => Cow::Owned(name[4..].to_owned()),
                };
                tags.push((key, decoded(value)));
                continue;
            }
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    Some(VerifyParams {
        privilege: decoded(privilege?).parse().ok()?,
        permissions,
        tags,
    })
}

/// Parsed queries by their text as sent, at most `CAPACITY` of them (when full it starts
/// again: a flood of distinct queries costs what parsing each costs, never more memory).
pub struct QueryCache {
    parsed: DashMap<Box<str>, Arc<Query>, foldhash::fast::RandomState>,
}

impl QueryCache {
    pub const CAPACITY: usize = 1024;

    pub fn new() -> Self {
        Self {
            parsed: DashMap::default(),
        }
    }

    /// The query sent as `raw` (percent-encoded), parsed once; a malformed one is not kept.
    pub fn parse(&self, raw: &str) -> Result<Arc<Query>, QueryError> {
        if let Some(query) = self.parsed.get(raw) {
            return Ok(query.clone());
        }
        let query = Arc::new(Query::parse(&decoded(raw))?);
        if self.parsed.len() >= Self::CAPACITY {
            self.parsed.clear();
        }
        self.parsed.insert(raw.into(), query.clone());
        Ok(query)
    }

    pub fn len(&self) -> usize {
        self.parsed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parsed.is_empty()
    }
}

impl Default for QueryCache {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_privilege_parameter_is_read_once_and_decoded() {
        #[rustfmt::skip]
        let cases = [
            ("privilege=full",                 Some(Privilege::Full)),
            ("privilege=demo",                 Some(Privilege::Demo)),
            ("privilege=%66ull",               Some(Privilege::Full)),
            ("a=1&privilege=custom&b",         Some(Privilege::Custom)),
            ("privilege=full&x=1",             Some(Privilege::Full)),
            ("privilege=full&&x",              Some(Privilege::Full)),
            ("privileg%65=full",               Some(Privilege::Full)),
            ("privilege=full&privilege=full",  None),
            ("privilege=full=x",               None),
            ("privilege=full+",                None),
            ("privilege=",                     None),
            ("privilege",                      None),
            ("Privilege=full",                 None),
            ("",                               None),
        ];
        for (query, expected) in cases {
            let read = verify_params(query).map(|params| params.privilege);
            assert_eq!(read, expected, "{query:?}");
        }
    }

    #[test]
    fn the_permissions_parameter_is_kept_as_sent_and_at_most_once() {
        let read = verify_params("privilege=full&permissions=a.read%20AND%20b").unwrap();
        assert_eq!(read.permissions, Some("a.read%20AND%20b"));
        let read = verify_params("permissions=a+OR+b&privilege=demo").unwrap();
        assert_eq!(read.permissions, Some("a+OR+b"));
        assert_eq!(read.privilege, Privilege::Demo);
        assert_eq!(
            verify_params("privilege=full&permissions=a&permissions=b"),
            None
        );
        assert_eq!(verify_params("permissions=a"), None);
    }

    #[test]
    fn queries_are_parsed_from_their_decoded_text_once_and_the_cache_stays_bounded() {
        let cache = QueryCache::new();
        let first = cache.parse("a.read+AND%20NOT%20b").unwrap();
        assert_eq!(first.to_string(), "a.read AND NOT b");
        assert!(Arc::ptr_eq(
            &first,
            &cache.parse("a.read+AND%20NOT%20b").unwrap()
        ));
        let err = cache.parse("a%20AND").unwrap_err();
        assert_eq!(err.to_string(), "expected a permission name at 5");
        assert_eq!(cache.len(), 1, "a malformed query is not kept");
        for n in 0..QueryCache::CAPACITY + 10 {
            cache.parse(&format!("p{n}")).unwrap();
        }
        assert!(cache.len() <= QueryCache::CAPACITY);
        assert_eq!(cache.parse("%C3%A9").unwrap_err().offset, Some(0));
    }
}
