//! The path a rule is matched against: one spelling for every way of writing it that an
//! upstream could serve as the same path, or a refusal where upstreams disagree. A rule on
//! `/admin/**` must not be escaped by `/%61dmin/users`, `//admin/users` or
//! `/public/../admin/users`.

use std::borrow::Cow;

/// Why a path is refused (a 400 naming the header it came in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("an encoded / or \\, a backslash, a . or .. segment, a control character or bytes that are not UTF-8")]
    Ambiguous,
}

/// `raw` (starting with `/`, without its query) percent-decoded and with runs of `/` merged.
/// Refused: `%2F` and `%5C` (an upstream may or may not decode them into separators), `\`
/// (some treat it as `/`), `.` and `..` segments (an upstream resolves them; clients never send
/// them), control characters and bytes that are not UTF-8.
pub fn canonical_path(raw: &str) -> Result<Cow<'_, str>, PathError> {
    let encoded_separator = raw
        .as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && matches!((w[1], w[2] | 0x20), (b'2', b'f') | (b'5', b'c')));
    if encoded_separator {
        return Err(PathError::Ambiguous);
    }
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| PathError::Ambiguous)?;
    if decoded.contains('\\') || decoded.chars().any(char::is_control) {
        return Err(PathError::Ambiguous);
    }
    let mut segments = decoded.split('/').skip(1);
    if segments.any(|segment| segment == "." || segment == "..") {
        return Err(PathError::Ambiguous);
    }
    // Most paths are already the one spelling: no copy.
    if !decoded.contains("//") {
        return Ok(decoded);
    }
    let mut path = String::with_capacity(decoded.len());
    for segment in decoded.split('/').filter(|segment| !segment.is_empty()) {
        path.push('/');
        path.push_str(segment);
    }
    if path.is_empty() || decoded.ends_with('/') {
        path.push('/');
    }
    Ok(Cow::Owned(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_path_is_one_and_ambiguous_ones_are_refused() {
        #[rustfmt::skip]
        let cases = [
            ("/admin/users",            Ok("/admin/users")),
            ("/%61dmin/users",          Ok("/admin/users")),
            ("/%61%64%6D%69%6E/users",  Ok("/admin/users")),
            ("//admin//users",          Ok("/admin/users")),
            ("/admin/users/",           Ok("/admin/users/")),
            ("/",                       Ok("/")),
            ("//",                      Ok("/")),
            ("/files/100%25",           Ok("/files/100%")),
            ("/caf%C3%A9",              Ok("/café")),
            ("/a%20b",                  Ok("/a b")),
            ("/public/../admin/users",  Err(PathError::Ambiguous)),
            ("/./admin/users",          Err(PathError::Ambiguous)),
            ("/admin/%2e%2e/x",         Err(PathError::Ambiguous)),
            ("/admin%2Fusers",          Err(PathError::Ambiguous)),
            ("/admin%2fusers",          Err(PathError::Ambiguous)),
            ("/admin%5Cusers",          Err(PathError::Ambiguous)),
            ("/admin\\users",           Err(PathError::Ambiguous)),
            ("/a%00b",                  Err(PathError::Ambiguous)),
            ("/a%FFb",                  Err(PathError::Ambiguous)),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                canonical_path(raw).as_deref().map_err(|e| *e),
                expected,
                "{raw}"
            );
        }
    }
}
