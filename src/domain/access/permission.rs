//! Permission names and grants: `projects.write`, `projects.*`, `*`.

use std::fmt;

/// A permission: 1–100 characters of `A-Z a-z 0-9 _ . : -`, in dot-separated segments, none
/// empty (`projects.write`; not `.a`, `a.`, `a..b`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PermissionName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    #[error("a permission is 1 to 100 characters of A-Z, a-z, 0-9, _, ., : and -")]
    Characters,
    #[error("a permission's dot-separated segments cannot be empty")]
    EmptySegment,
    #[error(
        "* stands only for a whole segment: alone (*), first or in the middle (*.read, \
         api.*.read_key: exactly one segment), or last (projects.*: everything below)"
    )]
    Wildcard,
    #[error(
        "in a query, * stands alone (anything granted) or last (projects.*: anything below); \
         only a grant may use it as a whole first or middle segment (*.read)"
    )]
    QueryWildcard,
}

impl PermissionName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(text: &str) -> Result<Self, PermissionError> {
        check_name(text)?;
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PermissionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The characters of a name (`.` apart: it separates segments).
static NAME_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b':' | b'-');
        b += 1;
    }
    table
};

/// The rule of a permission name, on text that may be anything: one pass over its bytes (this
/// runs for every name of every query).
pub(super) fn check_name(text: &str) -> Result<(), PermissionError> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() > PermissionName::MAX_CHARS {
        return Err(PermissionError::Characters);
    }
    // A dot at the start, at the end or after a dot leaves a segment empty.
    let (mut after_dot, mut empty, mut foreign) = (true, false, false);
    for &b in bytes {
        if b == b'.' {
            empty |= after_dot;
            after_dot = true;
        } else {
            foreign |= !NAME_BYTE[usize::from(b)];
            after_dot = false;
        }
    }
    if foreign {
        Err(PermissionError::Characters)
    } else if empty || after_dot {
        Err(PermissionError::EmptySegment)
    } else {
        Ok(())
    }
}

/// What a token may be granted: one permission, everything under a prefix (`projects.*`:
/// `projects.read`, `projects.a.b`, not `projects`), a pattern whose `*` segments stand for
/// exactly one segment each (`*.read`, `api.*.read_key`, `api.*.keys.*`), or everything (`*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grant {
    Exact(PermissionName),
    Under(PermissionName),
    Pattern(Pattern),
    All,
}

/// A grant with `*` as a whole first or middle segment: each stands for exactly one segment;
/// a last `.*` stands for everything below, as in `projects.*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pattern {
    /// `None`: `*`.
    segments: Vec<Option<String>>,
    /// Ends in `.*`.
    under: bool,
}

impl Pattern {
    /// Whether the permission `name` is granted by this pattern.
    pub fn allows(&self, name: &str) -> bool {
        let mut parts = name.split('.');
        for segment in &self.segments {
            match (parts.next(), segment) {
                (None, _) => return false,
                (Some(part), Some(literal)) if part != literal => return false,
                _ => {}
            }
        }
        match self.under {
            true => parts.next().is_some(),
            false => parts.next().is_none(),
        }
    }

    /// Whether some permission under `prefix` is granted by this pattern (a queried
    /// `prefix.*`).
    pub fn any_under(&self, prefix: &str) -> bool {
        let parts: Vec<&str> = prefix.split('.').collect();
        let agree = self
            .segments
            .iter()
            .zip(&parts)
            .all(|(segment, part)| segment.as_deref().is_none_or(|literal| literal == *part));
        agree && (self.under || self.segments.len() > parts.len())
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let texts: Vec<&str> = self
            .segments
            .iter()
            .map(|segment| segment.as_deref().unwrap_or("*"))
            .collect();
        f.write_str(&texts.join("."))?;
        if self.under {
            f.write_str(".*")?;
        }
        Ok(())
    }
}

impl Grant {
    pub fn parse(text: &str) -> Result<Self, PermissionError> {
        if text == "*" {
            return Ok(Self::All);
        }
        let (body, under) = match text.strip_suffix(".*") {
            Some(body) => (body, true),
            None => (text, false),
        };
        if !body.split('.').any(|segment| segment == "*") {
            if body.contains('*') {
                return Err(PermissionError::Wildcard);
            }
            let name = PermissionName::parse(body)?;
            return Ok(if under {
                Self::Under(name)
            } else {
                Self::Exact(name)
            });
        }
        if text.len() > PermissionName::MAX_CHARS {
            return Err(PermissionError::Characters);
        }
        let mut segments = Vec::new();
        for segment in body.split('.') {
            match segment {
                "*" => segments.push(None),
                "" => return Err(PermissionError::EmptySegment),
                literal if literal.contains('*') => return Err(PermissionError::Wildcard),
                literal => {
                    check_name(literal)?;
                    segments.push(Some(literal.to_owned()));
                }
            }
        }
        Ok(Self::Pattern(Pattern { segments, under }))
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => write!(f, "{name}"),
            Self::Under(prefix) => write!(f, "{prefix}.*"),
            Self::Pattern(pattern) => write!(f, "{pattern}"),
            Self::All => f.write_str("*"),
        }
    }
}

/// Whether `name` lies under `prefix` (`projects.a` under `projects`; `projects` is not).
pub(super) fn is_under(name: &str, prefix: &str) -> bool {
    name.len() > prefix.len() + 1
        && name.starts_with(prefix)
        && name.as_bytes()[prefix.len()] == b'.'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dot_separated_segments_of_the_allowed_characters() {
        for good in [
            "projects.write",
            "a",
            "billing:read",
            "x-y_z.1",
            &"a".repeat(100),
        ] {
            assert!(PermissionName::parse(good).is_ok(), "{good:?}");
        }
        for (bad, why) in [
            ("", PermissionError::Characters),
            (&"a".repeat(101), PermissionError::Characters),
            ("a b", PermissionError::Characters),
            ("projects.*", PermissionError::Characters),
            ("é", PermissionError::Characters),
            ("a\0", PermissionError::Characters),
            (".a", PermissionError::EmptySegment),
            ("a.", PermissionError::EmptySegment),
            ("a..b", PermissionError::EmptySegment),
        ] {
            assert_eq!(PermissionName::parse(bad), Err(why), "{bad:?}");
        }
    }

    #[test]
    fn grants_are_a_name_a_prefix_or_everything() {
        let name = |text: &str| PermissionName::parse(text).unwrap();
        assert_eq!(Grant::parse("*"), Ok(Grant::All));
        assert_eq!(
            Grant::parse("projects.*"),
            Ok(Grant::Under(name("projects")))
        );
        assert_eq!(
            Grant::parse("projects.read"),
            Ok(Grant::Exact(name("projects.read")))
        );
        assert!(Grant::parse(".*").is_err());
        for text in [
            "*",
            "projects.*",
            "projects.read",
            "*.read",
            "api.*.read_key",
            "a.*.*",
        ] {
            assert_eq!(Grant::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn a_star_segment_stands_for_exactly_one_segment() {
        let pattern = |text: &str| match Grant::parse(text).unwrap() {
            Grant::Pattern(pattern) => pattern,
            other => panic!("{text} is {other:?}"),
        };
        let read = pattern("*.read");
        assert!(read.allows("projects.read"));
        assert!(!read.allows("read"), "one segment, not none");
        assert!(!read.allows("a.b.read"), "one segment, not two");
        assert!(!read.allows("projects.write"));
        let key = pattern("api.*.read_key");
        assert!(key.allows("api.v1.read_key"));
        assert!(!key.allows("api.read_key"));
        assert!(!key.allows("api.v1.v2.read_key"));
        let below = pattern("api.*.*");
        assert!(below.allows("api.v1.keys") && below.allows("api.v1.keys.read"));
        assert!(!below.allows("api.v1"), "below, as projects.* is");
        assert!(read.any_under("projects"), "projects.read");
        assert!(
            !read.any_under("projects.read"),
            "nothing below projects.read"
        );
        assert!(key.any_under("api") && key.any_under("api.v1"));
        assert!(!key.any_under("apx"));
        assert!(below.any_under("api.v1.keys"));
    }

    #[test]
    fn a_star_anywhere_else_is_refused_saying_where_it_may_stand() {
        for bad in ["a*", "*a.read", "api.v*.read", "a.**.b", "a.*b", "**"] {
            assert_eq!(Grant::parse(bad), Err(PermissionError::Wildcard), "{bad}");
        }
        assert_eq!(Grant::parse("a..*.b"), Err(PermissionError::EmptySegment));
        let message = PermissionError::Wildcard.to_string();
        assert!(
            message.contains("*.read") && message.contains("projects.*"),
            "{message}"
        );
    }

    #[test]
    fn under_means_strictly_below_the_prefix() {
        assert!(is_under("projects.read", "projects"));
        assert!(is_under("projects.a.b", "projects"));
        assert!(!is_under("projects", "projects"));
        assert!(!is_under("projectsx.read", "projects"));
        assert!(!is_under("projects.", "projects"));
    }
}
