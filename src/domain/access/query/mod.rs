//! The permission query language (SPEC B4):
//!
//! ```text
//! expr  := and ("OR" and)*
//! and   := unary ("AND" unary)*
//! unary := "NOT" unary | "(" expr ")" | name
//! ```
//!
//! Keywords are case-insensitive, names case-sensitive. A name is a permission, `prefix.*`
//! (holds when any effective permission lies under the prefix) or `*` (holds when the token
//! has any permission). At most 1,000 characters, 100 names and 32 levels of nesting (`(` and
//! `NOT`); an error names the character offset and what was expected there.

mod fold;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use std::fmt;

use super::grants::Grants;
use super::permission::PermissionName;
use fold::{BuildQuery, Evaluate};
use parser::parse_with;

/// A parsed query, in normal form: no `AND` directly inside an `AND` (nor `OR` in `OR`), no
/// one-element group, so that printing and parsing again gives the same query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Term(Term),
    Not(Box<Query>),
    And(Vec<Query>),
    Or(Vec<Query>),
}

/// One queried name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Name(PermissionName),
    /// `prefix.*`
    Under(PermissionName),
    /// `*`
    Any,
}

/// Why a query was refused, with the character offset it was found at (`None`: the whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", offset.map(|at| format!(" at {at}")).unwrap_or_default())]
pub struct QueryError {
    pub offset: Option<usize>,
    pub message: String,
}

impl Query {
    pub const MAX_CHARS: usize = 1000;
    pub const MAX_NAMES: usize = 100;
    pub const MAX_DEPTH: usize = 32;

    pub fn parse(text: &str) -> Result<Self, QueryError> {
        parse_with(text, &mut BuildQuery)
    }

    /// Whether `text` holds for `grants`, without building the query: the same parser, folding
    /// each name into its truth as it is read (no allocation). A malformed query is the same
    /// error as `parse` gives.
    pub fn check(text: &str, grants: &Grants) -> Result<bool, QueryError> {
        parse_with(text, &mut Evaluate(grants))
    }

    /// Whether the query holds for these effective permissions.
    pub fn holds(&self, grants: &Grants) -> bool {
        match self {
            Self::Term(term) => term.holds(grants),
            Self::Not(inner) => !inner.holds(grants),
            Self::And(all) => all.iter().all(|q| q.holds(grants)),
            Self::Or(any) => any.iter().any(|q| q.holds(grants)),
        }
    }
}

impl Term {
    pub fn holds(&self, grants: &Grants) -> bool {
        match self {
            Self::Name(name) => grants.allows(name.as_str()),
            Self::Under(prefix) => grants.any_under(prefix.as_str()),
            Self::Any => grants.any(),
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => write!(f, "{name}"),
            Self::Under(prefix) => write!(f, "{prefix}.*"),
            Self::Any => f.write_str("*"),
        }
    }
}

/// The canonical text: keywords in capitals, parentheses only where they are needed.
impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, parts: &[Query], keyword: &str, or: bool| {
            for (n, part) in parts.iter().enumerate() {
                if n > 0 {
                    write!(f, " {keyword} ")?;
                }
                if !or && matches!(part, Self::Or(_)) {
                    write!(f, "({part})")?;
                } else {
                    write!(f, "{part}")?;
                }
            }
            Ok(())
        };
        match self {
            Self::Term(term) => write!(f, "{term}"),
            Self::Not(inner) => match **inner {
                Self::And(_) | Self::Or(_) => write!(f, "NOT ({inner})"),
                _ => write!(f, "NOT {inner}"),
            },
            Self::And(all) => join(f, all, "AND", false),
            Self::Or(any) => join(f, any, "OR", true),
        }
    }
}
