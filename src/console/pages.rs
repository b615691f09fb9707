//! The layout every page shares, the pages' own types (each a struct rendered by its template,
//! escaping by default), and how an answer is made of one.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;
use chrono::{DateTime, Utc};

use crate::admins::Signed;

/// A link of the navigation, shown only when the credential holds its scope.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The pages of the navigation, with the scope each needs (`None`: any credential).
const NAV: [(&str, &str, Option<&str>); 6] = [
    ("/console/tokens", "Tokens", Some("tokens.read")),
    ("/console/roles", "Roles", Some("roles.read")),
    ("/console/webhooks", "Webhooks", Some("webhooks.read")),
    ("/console/audit", "Audit log", Some("audit.read")),
    (
        "/console/credentials",
        "Credentials",
        Some("credentials.read"),
    ),
    ("/console/status", "Status", None),
];

/// Who is signed in, as the header shows it.
pub struct SignedIn {
    pub actor: String,
    pub csrf: String,
    pub nav: Vec<NavItem>,
}

pub struct Layout {
    pub title: String,
    pub signed: Option<SignedIn>,
}

impl Layout {
    /// A page for someone signed in; `current` is its navigation link.
    pub fn signed(title: impl Into<String>, signed: &Signed, current: &str) -> Self {
        let scopes = &signed.caller.scopes;
        let nav = NAV
            .iter()
            .filter(|(_, _, scope)| scope.is_none_or(|scope| scopes.allows(scope)))
            .map(|(href, label, _)| NavItem {
                href,
                label,
                current: *href == current,
            })
            .collect();
        Self {
            title: title.into(),
            signed: Some(SignedIn {
                actor: signed.caller.actor.to_string(),
                csrf: signed.session.csrf.clone(),
                nav,
            }),
        }
    }

    /// The CSRF token of the page's forms (empty when nobody is signed in).
    pub fn csrf(&self) -> &str {
        self.signed
            .as_ref()
            .map_or("", |signed| signed.csrf.as_str())
    }

    /// A page for someone not signed in.
    pub fn anonymous(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            signed: None,
        }
    }
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
pub struct SignInPage {
    pub layout: Layout,
    pub csrf: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/not_found.html")]
pub struct NotFoundPage {
    pub layout: Layout,
    pub what: String,
}

/// 404 in the layout: `what` is not there.
pub fn not_found_in(layout: Layout, what: String) -> HttpResponse {
    html(StatusCode::NOT_FOUND, &NotFoundPage { layout, what })
}

/// A refusal or a failure, said plainly (403 for a scope, 503 for the store).
#[derive(Template)]
#[template(path = "console/problem.html")]
pub struct ProblemPage {
    pub layout: Layout,
    pub heading: String,
    pub detail: String,
}

/// The answer of a page: HTML, with `status`, never stored (a page shown after sign-out, by the
/// back button, would show what only a session may see).
pub fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((CACHE_CONTROL, "no-store"))
            .body(body),
        Err(err) => {
            tracing::error!(error = %err, "console page did not render");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// A time as the console shows it: `2026-12-07 19:58 UTC (3 min ago)`.
pub fn when(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    let (amount, unit, ago) = match seconds.unsigned_abs() {
        s if s < 60 => return format!("{} (just now)", at.format("%Y-%m-%d %H:%M UTC")),
        s if s < 3_600 => (s / 60, "min", seconds > 0),
        s if s < 86_400 => (s / 3_600, "h", seconds > 0),
        s => (s / 86_400, "d", seconds > 0),
    };
    let hint = match ago {
        true => format!("{amount} {unit} ago"),
        false => format!("in {amount} {unit}"),
    };
    format!("{} ({hint})", at.format("%Y-%m-%d %H:%M UTC"))
}

/// A pool of credits as the console shows it: `98 left (next refill: …)`.
pub fn credits_text(credits: &crate::quotas::CreditsView, now: DateTime<Utc>) -> String {
    let next = when_or(credits.next_refill, now, "no refill");
    format!("{} left (next refill: {next})", credits.remaining)
}

/// `when`, or what its absence means.
pub fn when_or(at: Option<DateTime<Utc>>, now: DateTime<Utc>, none: &str) -> String {
    at.map_or_else(|| none.to_owned(), |at| when(at, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_in_utc_with_a_relative_hint() {
        let now = DateTime::from_timestamp(1_796_673_600, 0).unwrap();
        let cases = [
            (now, "2026-12-07 20:00 UTC (just now)"),
            (
                now - chrono::Duration::minutes(3),
                "2026-12-07 19:57 UTC (3 min ago)",
            ),
            (
                now - chrono::Duration::hours(5),
                "2026-12-07 15:00 UTC (5 h ago)",
            ),
            (
                now + chrono::Duration::days(2),
                "2026-12-09 20:00 UTC (in 2 d)",
            ),
        ];
        for (at, expected) in cases {
            assert_eq!(when(at, now), expected);
        }
    }
}
