//! A token's effective permissions (its direct ones ∪ its roles'), resolved once and kept in
//! the cached record: sorted, so that a query is answered with binary searches, no I/O.

use std::collections::HashSet;

use super::permission::{is_under, Grant, Pattern};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Exact permissions, sorted and distinct (for prefix queries).
    exact: Vec<String>,
    /// The same, for exact lookups: a hash beats a binary search over names that share long
    /// prefixes.
    lookup: HashSet<String, foldhash::fast::RandomState>,
    /// Granted prefixes (`projects` for `projects.*`), sorted and distinct.
    under: Vec<String>,
    /// Granted patterns (`*.read`, `api.*.read_key`), sorted and distinct; most tokens have
    /// none, so the common case pays nothing for them.
    patterns: Vec<Pattern>,
    /// `*`.
    all: bool,
}

impl Grants {
    pub fn new(grants: impl IntoIterator<Item = Grant>) -> Self {
        let mut set = Self::default();
        for grant in grants {
            match grant {
                Grant::Exact(name) => set.exact.push(name.as_str().to_owned()),
                Grant::Under(prefix) => set.under.push(prefix.as_str().to_owned()),
                Grant::Pattern(pattern) => set.patterns.push(pattern),
                Grant::All => set.all = true,
            }
        }
        set.exact.sort_unstable();
        set.exact.dedup();
        set.lookup = set.exact.iter().cloned().collect();
        set.under.sort_unstable();
        set.under.dedup();
        set.patterns.sort_unstable();
        set.patterns.dedup();
        set
    }

    pub fn is_empty(&self) -> bool {
        !self.all && self.exact.is_empty() && self.under.is_empty() && self.patterns.is_empty()
    }

    /// Whether `name` itself is granted (not through a prefix): granted names are valid names.
    pub fn has_exactly(&self, name: &str) -> bool {
        self.lookup.contains(name)
    }

    /// Whether the permission `name` is granted: exactly, under a granted prefix, or by `*`.
    pub fn allows(&self, name: &str) -> bool {
        self.has_exactly(name) || self.allows_beyond_exactly(name)
    }

    /// Whether `name` is granted by `*` or under a granted prefix (`allows` but for the exact
    /// lookup, for a caller that has made it already).
    pub fn allows_beyond_exactly(&self, name: &str) -> bool {
        self.all
            || self.under.iter().any(|prefix| is_under(name, prefix))
            || self.patterns.iter().any(|pattern| pattern.allows(name))
    }

    /// Whether any granted permission lies under `prefix` (a queried `prefix.*`): a granted
    /// name or prefix below it, the prefix itself or one above it granted, or `*`.
    pub fn any_under(&self, prefix: &str) -> bool {
        if self.all {
            return true;
        }
        let first = self.exact.partition_point(|e| e.as_str() <= prefix);
        let below = self
            .exact
            .get(first..)
            .into_iter()
            .flatten()
            .take_while(|e| e.starts_with(prefix))
            .any(|e| is_under(e, prefix));
        below
            || self
                .under
                .iter()
                .any(|p| p == prefix || is_under(p, prefix) || is_under(prefix, p))
            || self
                .patterns
                .iter()
                .any(|pattern| pattern.any_under(prefix))
    }

    /// Whether anything at all is granted (a queried `*`).
    pub fn any(&self) -> bool {
        !self.is_empty()
    }

    /// Every grant as written (`*`, `projects.*`, `projects.read`), sorted.
    pub fn texts(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .exact
            .iter()
            .cloned()
            .chain(self.under.iter().map(|p| format!("{p}.*")))
            .chain(self.patterns.iter().map(Pattern::to_string))
            .chain(self.all.then(|| "*".to_owned()))
            .collect();
        all.sort_unstable();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(texts: &[&str]) -> Grants {
        Grants::new(texts.iter().map(|t| Grant::parse(t).unwrap()))
    }

    #[test]
    fn a_prefix_grants_everything_below_it_and_not_itself() {
        let set = grants(&["projects.*", "billing.read"]);
        assert!(set.allows("projects.read"));
        assert!(set.allows("projects.a.b"));
        assert!(!set.allows("projects"));
        assert!(!set.allows("projectsx.read"));
        assert!(set.allows("billing.read"));
        assert!(!set.allows("billing.write"));
        assert!(grants(&["*"]).allows("anything.at.all"));
        assert!(!Grants::default().allows("a"));
    }

    #[test]
    fn a_queried_prefix_holds_when_something_lies_under_it() {
        let set = grants(&["billing.read", "projects.a.*"]);
        assert!(set.any_under("billing"));
        assert!(!set.any_under("bill"));
        assert!(!set.any_under("billing.read"));
        assert!(set.any_under("projects"));
        assert!(set.any_under("projects.a"));
        assert!(set.any_under("projects.a.b"));
        assert!(!set.any_under("projects.b"));
        assert!(grants(&["*"]).any_under("x"));
        assert!(!grants(&["billing"]).any_under("billing"));
    }

    #[test]
    fn texts_are_the_grants_as_written_sorted() {
        let set = grants(&["b", "a.*", "*", "b", "a.b"]);
        assert_eq!(set.texts(), ["*", "a.*", "a.b", "b"]);
    }
}
