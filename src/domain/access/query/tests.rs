//! The query language: examples, limits, errors, and properties against a reference.

use proptest::prelude::*;

use super::fold::join;
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
        // A pattern: the name's first segment, or its middle one, as `*`.
        2 => proptest::sample::select(&NAMES[..])
            .prop_filter("two segments or more", |n| n.contains('.'))
            .prop_flat_map(|n| {
                let segments = n.split('.').count();
                (Just(n), 0..segments - 1)
            })
            .prop_map(|(n, star)| {
                let mut segments: Vec<&str> = n.split('.').collect();
                segments[star] = "*";
                Grant::parse(&segments.join(".")).unwrap()
            }),
    ]
}

/// A pattern read literally: `*` is one whole segment, anything else itself; `.*` at the end
/// is everything below.
fn pattern_grants(pattern: &str, name: &str) -> bool {
    let (body, below) = match pattern.strip_suffix(".*") {
        Some(body) => (body, true),
        None => (pattern, false),
    };
    let wanted: Vec<&str> = body.split('.').collect();
    let got: Vec<&str> = name.split('.').collect();
    let long_enough = match below {
        true => got.len() > wanted.len(),
        false => got.len() == wanted.len(),
    };
    long_enough && wanted.iter().zip(&got).all(|(w, g)| *w == "*" || w == g)
}

/// SPEC B4 read literally, over a universe with a name below every name.
fn reference(query: &Query, granted: &[Grant]) -> bool {
    let under = |name: &str, prefix: &str| name.starts_with(&format!("{prefix}."));
    let is_granted = |name: &str| {
        granted.iter().any(|g| match g {
            Grant::All => true,
            Grant::Exact(e) => e.as_str() == name,
            Grant::Under(p) => under(name, p.as_str()),
            Grant::Pattern(p) => pattern_grants(&p.to_string(), name),
        })
    };
    // Every name, and one or two more segments below it (any segment a grant may spell, and
    // one none does), so that a pattern's names below a queried prefix are in it.
    const SEGMENTS: [&str; 4] = ["a", "b", "c", "zz"];
    let mut universe = Vec::new();
    for n in NAMES {
        universe.push(n.to_string());
        for s in SEGMENTS {
            universe.push(format!("{n}.{s}"));
            for t in SEGMENTS {
                universe.push(format!("{n}.{s}.{t}"));
            }
        }
    }
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
