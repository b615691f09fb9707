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
/// `projects.read`, `projects.a.b`, not `projects`), or everything (`*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grant {
    Exact(PermissionName),
    Under(PermissionName),
    All,
}

impl Grant {
    pub fn parse(text: &str) -> Result<Self, PermissionError> {
        if text == "*" {
            return Ok(Self::All);
        }
        match text.strip_suffix(".*") {
            Some(prefix) => PermissionName::parse(prefix).map(Self::Under),
            None => PermissionName::parse(text).map(Self::Exact),
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => write!(f, "{name}"),
            Self::Under(prefix) => write!(f, "{prefix}.*"),
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
        assert!(Grant::parse("a.*.b").is_err());
        for text in ["*", "projects.*", "projects.read"] {
            assert_eq!(Grant::parse(text).unwrap().to_string(), text);
        }
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
