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

    /// Whether `path` (starting with `/`, without its query) matches. Time is bounded by
    /// segments × parts whatever the `**`s (no backtracking: a client picks the path).
    pub fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        // `after[j]`: the segments from `i` on match `parts[j..]`, computed from the last
        // segment back to the first; one row of the table at a time.
        let mut after = vec![false; parts.len() + 1];
        after[parts.len()] = true;
        for segment in self.segments.iter().rev() {
            let mut row = vec![false; parts.len() + 1];
            match segment {
                // Nothing, or one part and again `**`.
                Segment::Any => {
                    for j in (0..=parts.len()).rev() {
                        row[j] = after[j] || (j < parts.len() && row[j + 1]);
                    }
                }
                Segment::Pattern(pattern) => {
                    for j in 0..parts.len() {
                        row[j] = after[j + 1] && wildcard(pattern, parts[j]);
                    }
                }
            }
            after = row;
        }
        after[0]
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
    fn many_any_depth_segments_against_a_long_path_answer_at_once() {
        let glob = PathGlob::parse("/**/a/**/b/**/c/**/d/**/e/**/f/**/x").unwrap();
        let path = "/a/b/c/d/e/f".repeat(600);
        assert!(!glob.matches(&path));
        assert!(glob.matches(&format!("{path}/x")));
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
