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

use std::fmt;

use super::grants::Grants;
use super::permission::{check_name, PermissionError, PermissionName};

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

/// What the parser makes of what it reads: a query, or directly its truth.
trait Fold {
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

struct BuildQuery;

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
fn join(left: Query, right: Query, or: bool) -> Query {
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

struct Evaluate<'g>(&'g Grants);

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
        check_name(name).map_err(|err| invalid_name(err, at))?;
        Ok(if under {
            grants.any_under(name)
        } else {
            grants.allows(name)
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

fn parse_with<F: Fold>(text: &str, fold: &mut F) -> Result<F::Out, QueryError> {
    // Checked before anything is read: a 1 MiB query costs 1,001 characters of counting (and
    // a query of at most 1,000 bytes none).
    if text.len() > Query::MAX_CHARS && text.chars().nth(Query::MAX_CHARS).is_some() {
        return Err(QueryError {
            offset: None,
            message: format!("a query is at most {} characters", Query::MAX_CHARS),
        });
    }
    let mut parser = Parser {
        lexer: Lexer::new(text),
        names: 0,
        fold,
    };
    let out = parser.expr(0)?;
    match parser.lexer.peek() {
        Token::End(_) => Ok(out),
        token => Err(expected("AND, OR or the end of the query", token.offset())),
    }
}

#[derive(Debug, Clone, Copy)]
enum Token<'a> {
    Open(usize),
    Close(usize),
    Word(usize, &'a str),
    End(usize),
}

impl Token<'_> {
    fn offset(&self) -> usize {
        match *self {
            Self::Open(at) | Self::Close(at) | Self::Word(at, _) | Self::End(at) => at,
        }
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self, Self::Word(_, word) if word.eq_ignore_ascii_case(keyword))
    }
}

fn expected(what: &str, offset: usize) -> QueryError {
    QueryError {
        offset: Some(offset),
        message: format!("expected {what}"),
    }
}

/// Reads tokens one at a time: words are runs of anything but whitespace and parentheses;
/// offsets count characters.
struct Lexer<'a> {
    text: &'a str,
    /// ASCII text is read byte by byte; anything else by characters (for the offsets).
    ascii: bool,
    byte: usize,
    chars: usize,
    peeked: Option<Token<'a>>,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            ascii: text.is_ascii(),
            byte: 0,
            chars: 0,
            peeked: None,
        }
    }

    fn peek(&mut self) -> Token<'a> {
        if let Some(token) = self.peeked {
            return token;
        }
        let token = self.read();
        self.peeked = Some(token);
        token
    }

    fn bump(&mut self) {
        if self.peeked.take().is_none() {
            self.read();
        }
    }

    fn read(&mut self) -> Token<'a> {
        if self.ascii {
            self.read_ascii()
        } else {
            self.read_chars()
        }
    }

    /// The common case: byte offsets are character offsets.
    fn read_ascii(&mut self) -> Token<'a> {
        let bytes = self.text.as_bytes();
        let delimiter = |b: u8| b.is_ascii_whitespace() || b == b'(' || b == b')';
        while self.byte < bytes.len() && bytes[self.byte].is_ascii_whitespace() {
            self.byte += 1;
        }
        let at = self.byte;
        match bytes.get(at) {
            None => Token::End(at),
            Some(b'(') => {
                self.byte += 1;
                Token::Open(at)
            }
            Some(b')') => {
                self.byte += 1;
                Token::Close(at)
            }
            Some(_) => {
                while self.byte < bytes.len() && !delimiter(bytes[self.byte]) {
                    self.byte += 1;
                }
                Token::Word(at, &self.text[at..self.byte])
            }
        }
    }

    fn read_chars(&mut self) -> Token<'a> {
        let base = self.byte;
        let rest = &self.text[base..];
        // (character offset, byte offset in `rest`) of the word being read.
        let mut word: Option<(usize, usize)> = None;
        for (offset, c) in rest.char_indices() {
            if !(c.is_whitespace() || c == '(' || c == ')') {
                if word.is_none() {
                    word = Some((self.chars, offset));
                }
                self.chars += 1;
                continue;
            }
            if let Some((at, start)) = word {
                // The delimiter is read next time.
                self.byte = base + offset;
                return Token::Word(at, &rest[start..offset]);
            }
            let at = self.chars;
            self.chars += 1;
            if c == '(' || c == ')' {
                self.byte = base + offset + 1;
                return if c == '(' {
                    Token::Open(at)
                } else {
                    Token::Close(at)
                };
            }
        }
        self.byte = self.text.len();
        match word {
            Some((at, start)) => Token::Word(at, &rest[start..]),
            None => Token::End(self.chars),
        }
    }
}

struct Parser<'a, 'f, F> {
    lexer: Lexer<'a>,
    names: usize,
    fold: &'f mut F,
}

impl<F: Fold> Parser<'_, '_, F> {
    fn expr(&mut self, depth: usize) -> Result<F::Out, QueryError> {
        let mut any = self.and(depth)?;
        while self.lexer.peek().is_keyword("OR") {
            self.lexer.bump();
            let next = self.and(depth)?;
            any = self.fold.or(any, next);
        }
        Ok(any)
    }

    fn and(&mut self, depth: usize) -> Result<F::Out, QueryError> {
        let mut all = self.unary(depth)?;
        while self.lexer.peek().is_keyword("AND") {
            self.lexer.bump();
            let next = self.unary(depth)?;
            all = self.fold.and(all, next);
        }
        Ok(all)
    }

    fn unary(&mut self, depth: usize) -> Result<F::Out, QueryError> {
        let token = self.lexer.peek();
        let nests = matches!(token, Token::Open(_)) || token.is_keyword("NOT");
        if nests && depth >= Query::MAX_DEPTH {
            return Err(QueryError {
                offset: Some(token.offset()),
                message: format!("a query nests at most {} levels", Query::MAX_DEPTH),
            });
        }
        match token {
            Token::Word(..) if token.is_keyword("NOT") => {
                self.lexer.bump();
                let inner = self.unary(depth + 1)?;
                Ok(self.fold.not(inner))
            }
            Token::Open(_) => {
                self.lexer.bump();
                let inner = self.expr(depth + 1)?;
                match self.lexer.peek() {
                    Token::Close(_) => {
                        self.lexer.bump();
                        Ok(inner)
                    }
                    other => Err(expected("AND, OR or )", other.offset())),
                }
            }
            Token::Word(at, word) if !token.is_keyword("AND") && !token.is_keyword("OR") => {
                self.names += 1;
                if self.names > Query::MAX_NAMES {
                    return Err(QueryError {
                        offset: Some(at),
                        message: format!("a query names at most {} permissions", Query::MAX_NAMES),
                    });
                }
                self.lexer.bump();
                self.fold.name(word, at)
            }
            other => Err(expected("a permission name", other.offset())),
        }
    }
}

fn invalid_name(err: PermissionError, at: usize) -> QueryError {
    QueryError {
        offset: Some(at),
        message: format!("invalid permission name: {err}"),
    }
}

fn term(word: &str, at: usize) -> Result<Term, QueryError> {
    if word == "*" {
        return Ok(Term::Any);
    }
    match word.strip_suffix(".*") {
        Some(prefix) => PermissionName::parse(prefix).map(Term::Under),
        None => PermissionName::parse(word).map(Term::Name),
    }
    .map_err(|err| invalid_name(err, at))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::access::Grant;

    fn grants(texts: &[&str]) -> Grants {
        Grants::new(texts.iter().map(|t| Grant::parse(t).unwrap()))
    }

    fn holds(query: &str, granted: &[&str]) -> bool {
        Query::parse(query).unwrap().holds(&grants(granted))
    }

    #[test]
    fn queries_combine_names_with_and_or_not_and_parentheses() {
        let granted = ["projects.read", "billing.*"];
        assert!(holds("projects.read", &granted));
        assert!(!holds("projects.write", &granted));
        assert!(holds("projects.read AND billing.invoices", &granted));
        assert!(holds("projects.write OR billing.x", &granted));
        assert!(holds("NOT projects.write", &granted));
        assert!(!holds("projects.read AND NOT billing.x", &granted));
        assert!(holds(
            "(projects.write OR projects.read) and billing.x",
            &granted
        ));
        assert!(holds("projects.*", &granted));
        assert!(!holds("admin.*", &granted));
        assert!(holds("*", &granted));
        assert!(!holds("*", &[]));
        // AND binds tighter than OR.
        assert!(holds("projects.write AND admin OR projects.read", &granted));
        // Keywords in any case; names exactly.
        assert!(holds("Projects.read or projects.READ or not x", &granted));
        assert!(!holds("Projects.read", &granted));
    }

    #[test]
    fn errors_name_the_offset_and_what_was_expected() {
        let error = |text: &str| Query::parse(text).unwrap_err().to_string();
        assert_eq!(error(""), "expected a permission name at 0");
        assert_eq!(error("a AND"), "expected a permission name at 5");
        assert_eq!(error("AND a"), "expected a permission name at 0");
        assert_eq!(
            error("a b"),
            "expected AND, OR or the end of the query at 2"
        );
        assert_eq!(error("(a OR b"), "expected AND, OR or ) at 7");
        assert_eq!(error("a)"), "expected AND, OR or the end of the query at 1");
        assert_eq!(error("()"), "expected a permission name at 1");
        assert_eq!(
            error("projects.read AND bil ling"),
            "expected AND, OR or the end of the query at 22"
        );
        assert_eq!(
            error("a AND ü.b"),
            "invalid permission name: a permission is 1 to 100 characters of A-Z, a-z, 0-9, _, ., : and - at 6"
        );
        assert_eq!(
            error("a\0b"),
            "invalid permission name: a permission is 1 to 100 characters of A-Z, a-z, 0-9, _, ., : and - at 0"
        );
        assert_eq!(
            error("a..b"),
            "invalid permission name: a permission's dot-separated segments cannot be empty at 0"
        );
    }

    #[test]
    fn limits_hold_before_any_deep_work() {
        let long = "a".repeat(1024 * 1024);
        assert_eq!(
            Query::parse(&long).unwrap_err().to_string(),
            "a query is at most 1000 characters"
        );
        let deep = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
        let deep = &deep[..];
        assert!(Query::parse(deep).is_err(), "over 1,000 characters");
        let nested = format!("{}a{}", "(".repeat(33), ")".repeat(33));
        assert_eq!(
            Query::parse(&nested).unwrap_err().to_string(),
            "a query nests at most 32 levels at 32"
        );
        let fine = format!("{}a{}", "(".repeat(32), ")".repeat(32));
        assert!(Query::parse(&fine).is_ok());
        let nots = format!("{}a", "NOT ".repeat(33));
        assert_eq!(
            Query::parse(&nots).unwrap_err().to_string(),
            "a query nests at most 32 levels at 128"
        );
        let names = vec!["a"; 101].join(" OR ");
        assert_eq!(
            Query::parse(&names).unwrap_err().to_string(),
            "a query names at most 100 permissions at 500"
        );
        assert!(Query::parse(&vec!["a"; 100].join(" OR ")).is_ok());
    }

    #[test]
    fn printing_is_canonical() {
        let print = |text: &str| Query::parse(text).unwrap().to_string();
        assert_eq!(print("a and (b or c)"), "a AND (b OR c)");
        assert_eq!(print("((a))"), "a");
        assert_eq!(print("(a AND b) AND c"), "a AND b AND c");
        assert_eq!(print("a OR (b OR c)"), "a OR b OR c");
        assert_eq!(print("not (a and b)"), "NOT (a AND b)");
        assert_eq!(print("NOT NOT x.*"), "NOT NOT x.*");
        assert_eq!(print("a or b and c"), "a OR b AND c");
    }

    // ---- properties ------------------------------------------------------------------------

    const NAMES: [&str; 6] = ["a", "a.b", "a.b.c", "a.c", "b", "b.c"];

    fn term() -> impl Strategy<Value = Term> {
        let name = |text: &str| PermissionName::parse(text).unwrap();
        prop_oneof![
            4 => proptest::sample::select(&NAMES[..]).prop_map(move |n| Term::Name(name(n))),
            2 => proptest::sample::select(&NAMES[..]).prop_map(move |n| Term::Under(name(n))),
            1 => Just(Term::Any),
        ]
    }

    fn query() -> impl Strategy<Value = Query> {
        term()
            .prop_map(Query::Term)
            .prop_recursive(5, 40, 4, |inner| {
                prop_oneof![
                    inner.clone().prop_map(|q| Query::Not(Box::new(q))),
                    proptest::collection::vec(inner.clone(), 2..4).prop_map(Query::And),
                    proptest::collection::vec(inner, 2..4).prop_map(Query::Or),
                ]
            })
    }

    /// The normal form the parser produces: same-kind groups merged.
    fn normal(query: Query) -> Query {
        let merge = |parts: Vec<Query>, or: bool| {
            let mut parts = parts.into_iter().map(normal);
            let first = parts.next().unwrap();
            parts.fold(first, |left, right| join(left, right, or))
        };
        match query {
            Query::Not(inner) => Query::Not(Box::new(normal(*inner))),
            Query::And(all) => merge(all, false),
            Query::Or(any) => merge(any, true),
            term => term,
        }
    }

    fn grant() -> impl Strategy<Value = Grant> {
        prop_oneof![
            3 => proptest::sample::select(&NAMES[..]).prop_map(|n| Grant::parse(n).unwrap()),
            2 => proptest::sample::select(&NAMES[..])
                .prop_map(|n| Grant::parse(&format!("{n}.*")).unwrap()),
            1 => Just(Grant::All),
        ]
    }

    /// SPEC B4 read literally, over a universe with a name below every name.
    fn reference(query: &Query, granted: &[Grant]) -> bool {
        let under = |name: &str, prefix: &str| name.starts_with(&format!("{prefix}."));
        let is_granted = |name: &str| {
            granted.iter().any(|g| match g {
                Grant::All => true,
                Grant::Exact(e) => e.as_str() == name,
                Grant::Under(p) => under(name, p.as_str()),
            })
        };
        let universe: Vec<String> = NAMES
            .iter()
            .flat_map(|n| [n.to_string(), format!("{n}.zz")])
            .collect();
        match query {
            Query::Term(Term::Name(name)) => is_granted(name.as_str()),
            Query::Term(Term::Under(prefix)) => universe
                .iter()
                .any(|n| under(n, prefix.as_str()) && is_granted(n)),
            Query::Term(Term::Any) => universe.iter().any(|n| is_granted(n)),
            Query::Not(inner) => !reference(inner, granted),
            Query::And(all) => all.iter().all(|q| reference(q, granted)),
            Query::Or(any) => any.iter().any(|q| reference(q, granted)),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_evaluator_agrees_with_the_reference(
            query in query(),
            granted in proptest::collection::vec(grant(), 0..6),
        ) {
            let set = Grants::new(granted.clone());
            prop_assert_eq!(query.holds(&set), reference(&query, &granted), "{}", query);
        }

        #[test]
        fn checking_the_text_agrees_with_the_parsed_query(
            query in query(),
            granted in proptest::collection::vec(grant(), 0..6),
        ) {
            let set = Grants::new(granted);
            let text = query.to_string();
            prop_assert_eq!(Query::check(&text, &set), Ok(query.holds(&set)), "{}", text);
        }

        #[test]
        fn malformed_text_fails_both_ways_alike(text in "[ab.*() ANDORT\\x00é]{0,30}") {
            let parsed = Query::parse(&text).map(|q| q.holds(&Grants::default()));
            prop_assert_eq!(Query::check(&text, &Grants::default()), parsed);
        }

        #[test]
        fn parse_print_parse_is_the_identity(query in query()) {
            let query = normal(query);
            let text = query.to_string();
            prop_assert_eq!(Query::parse(&text), Ok(query), "{}", text);
        }
    }
}
