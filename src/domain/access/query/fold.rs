//! What the parser makes of what it reads: the query in normal form, or directly its truth.

use super::parser::{refused_name, term};
use super::{Query, QueryError, Term};
use crate::domain::access::grants::Grants;
use crate::domain::access::permission::check_name;

/// What the parser folds what it reads into.
pub(super) trait Fold {
    type Out;
    fn term(&mut self, term: Term) -> Self::Out;
    /// A name checked but not kept (the evaluator's fast path): by default, its term.
    fn name(&mut self, word: &str, at: usize) -> Result<Self::Out, QueryError> {
        term(word, at).map(|t| self.term(t))
    }
    fn not(&mut self, inner: Self::Out) -> Self::Out;
    fn and(&mut self, left: Self::Out, right: Self::Out) -> Self::Out;
    fn or(&mut self, left: Self::Out, right: Self::Out) -> Self::Out;
}

pub(super) struct BuildQuery;

impl Fold for BuildQuery {
    type Out = Query;
    fn term(&mut self, term: Term) -> Query {
        Query::Term(term)
    }
    fn not(&mut self, inner: Query) -> Query {
        Query::Not(Box::new(inner))
    }
    fn and(&mut self, left: Query, right: Query) -> Query {
        join(left, right, false)
    }
    fn or(&mut self, left: Query, right: Query) -> Query {
        join(left, right, true)
    }
}

/// `left AND right` (or `OR`) in normal form: a group of that kind on either side is merged.
pub(super) fn join(left: Query, right: Query, or: bool) -> Query {
    let mut parts = match left {
        Query::Or(parts) if or => parts,
        Query::And(parts) if !or => parts,
        other => vec![other],
    };
    match right {
        Query::Or(more) if or => parts.extend(more),
        Query::And(more) if !or => parts.extend(more),
        other => parts.push(other),
    }
    if or {
        Query::Or(parts)
    } else {
        Query::And(parts)
    }
}

pub(super) struct Evaluate<'g>(pub(super) &'g Grants);

impl Fold for Evaluate<'_> {
    type Out = bool;
    fn term(&mut self, term: Term) -> bool {
        term.holds(self.0)
    }
    fn name(&mut self, word: &str, at: usize) -> Result<bool, QueryError> {
        let grants = self.0;
        if word == "*" {
            return Ok(grants.any());
        }
        let (name, under) = match word.strip_suffix(".*") {
            Some(prefix) => (prefix, true),
            None => (word, false),
        };
        // A name granted exactly is a valid name: its check is the lookup itself.
        if !under && grants.has_exactly(name) {
            return Ok(true);
        }
        check_name(name).map_err(|err| refused_name(err, word, at))?;
        Ok(if under {
            grants.any_under(name)
        } else {
            grants.allows_beyond_exactly(name)
        })
    }
    fn not(&mut self, inner: bool) -> bool {
        !inner
    }
    fn and(&mut self, left: bool, right: bool) -> bool {
        left && right
    }
    fn or(&mut self, left: bool, right: bool) -> bool {
        left || right
    }
}
