//! The recursive-descent parser, with the limits, over a `Fold`.

use super::fold::Fold;
use super::lexer::{Lexer, Token};
use super::{Query, QueryError, Term};
use crate::domain::access::permission::{PermissionError, PermissionName};

pub(super) fn parse_with<F: Fold>(text: &str, fold: &mut F) -> Result<F::Out, QueryError> {
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

fn expected(what: &str, offset: usize) -> QueryError {
    QueryError {
        offset: Some(offset),
        message: format!("expected {what}"),
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

pub(super) fn invalid_name(err: PermissionError, at: usize) -> QueryError {
    QueryError {
        offset: Some(at),
        message: format!("invalid permission name: {err}"),
    }
}

pub(super) fn term(word: &str, at: usize) -> Result<Term, QueryError> {
    if word == "*" {
        return Ok(Term::Any);
    }
    match word.strip_suffix(".*") {
        Some(prefix) => PermissionName::parse(prefix).map(Term::Under),
        None => PermissionName::parse(word).map(Term::Name),
    }
    .map_err(|err| refused_name(err, word, at))
}

/// A name refused, as both ways of reading a query say it: the query language is unchanged,
/// so a `*` anywhere but alone or last is refused saying where it may stand.
pub(super) fn refused_name(err: PermissionError, word: &str, at: usize) -> QueryError {
    match word.contains('*') {
        true => invalid_name(PermissionError::QueryWildcard, at),
        false => invalid_name(err, at),
    }
}
