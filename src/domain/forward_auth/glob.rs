//! A path glob: `/`-separated segments, each literal, `**` (any number of segments, none
//! included) or a pattern where `*` stands for any characters but `/` (`v*`, `*.json`, `*`).

/// At most this many characters and segments, so matching stays cheap.
const MAX_LEN: usize = 512;
const MAX_SEGMENTS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGlob {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`
    Any,
    /// A literal, or a pattern with `*`.
    Pattern(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("a path glob starts with / and is at most {MAX_LEN} characters")]
    Shape,
    #[error("** stands alone in its segment (/api/**/x, not /api/a**)")]
    Wildcard,
    #[error("a path glob has at most {MAX_SEGMENTS} segments")]
    TooLong,
}

impl PathGlob {
    pub fn parse(text: &str) -> Result<Self, GlobError> {
        if !text.starts_with('/') || text.len() > MAX_LEN {
            return Err(GlobError::Shape);
        }
        let parts: Vec<&str> = text[1..].split('/').collect();
        if parts.len() > MAX_SEGMENTS {
            return Err(GlobError::TooLong);
        }
        let segments = parts
            .into_iter()
            .map(|part| match part {
                "**" => Ok(Segment::Any),
                part if part.contains("**") => Err(GlobError::Wildcard),
                part => Ok(Segment::Pattern(part.to_owned())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `path` (starting with `/`, without its query) matches.
    pub fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        matches_from(&self.segments, &parts)
    }
}

/// Segments against path parts; `**` tries every split (bounded by the segment counts).
fn matches_from(segments: &[Segment], parts: &[&str]) -> bool {
    match segments.split_first() {
        None => parts.is_empty(),
        Some((Segment::Any, rest)) => {
            (0..=parts.len()).any(|skip| matches_from(rest, &parts[skip..]))
        }
        Some((Segment::Pattern(pattern), rest)) => match parts.split_first() {
            Some((part, others)) => wildcard(pattern, part) && matches_from(rest, others),
            None => false,
        },
    }
}

/// `pattern` with `*` as any run of characters, against one segment.
fn wildcard(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_segments_wildcards_and_any_depth() {
        let cases = [
            ("/api/*", "/api/users", true),
            ("/api/*", "/api/users/7", false),
            ("/api/*", "/api", false),
            ("/api/**", "/api", true),
            ("/api/**", "/api/users/7/keys", true),
            ("/api/**/keys", "/api/keys", true),
            ("/api/**/keys", "/api/users/7/keys", true),
            ("/api/**/keys", "/api/users/7/key", false),
            ("/v*/search", "/v2/search", true),
            ("/v*/search", "/x2/search", false),
            ("/files/*.json", "/files/a.json", true),
            ("/files/*.json", "/files/a.json.bak", false),
            ("/a*b*c", "/abc", true),
            ("/a*b*c", "/aXbYc", true),
            ("/a*b*c", "/acb", false),
            ("/health", "/health", true),
            ("/health", "/healthz", false),
            ("/", "/", true),
            ("/**", "/anything/at/all", true),
            ("/api/*", "api/users", false),
        ];
        for (glob, path, expected) in cases {
            let parsed = PathGlob::parse(glob).unwrap();
            assert_eq!(parsed.matches(path), expected, "{glob} vs {path}");
        }
    }

    #[test]
    fn malformed_globs_are_refused() {
        assert_eq!(PathGlob::parse("api/*"), Err(GlobError::Shape));
        assert_eq!(PathGlob::parse("/api/a**"), Err(GlobError::Wildcard));
        assert_eq!(PathGlob::parse(&"/a".repeat(40)), Err(GlobError::TooLong));
        assert_eq!(
            PathGlob::parse(&format!("/{}", "a".repeat(600))),
            Err(GlobError::Shape)
        );
    }
}
