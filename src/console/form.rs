//! What the console's forms share: their mistakes by field, the admin API's refusals put next
//! to the field they name, the text a refused field keeps, and comma-separated lists.

use std::collections::HashMap;

use crate::domain::state::StateReason;
use crate::http::AdminFailure;
use crate::store::StateChange;

/// Mistakes of the form, by field (`form`: the form as a whole).
#[derive(Default)]
pub struct FormErrors(pub Vec<(&'static str, String)>);

impl FormErrors {
    /// One mistake.
    pub fn one(field: &'static str, message: impl Into<String>) -> Self {
        Self(vec![(field, message.into())])
    }

    /// The admin API's refusal, next to the form field its `field` names: the first of
    /// `fields` (`(the API's field or its prefix, the form's field)`) it starts with (a
    /// refusal naming no field starts with `""`), else the form as a whole. The message is the
    /// API's own.
    pub fn refused(failure: AdminFailure, fields: &[(&str, &'static str)]) -> Self {
        let field = failure.field.as_deref().unwrap_or("");
        let at = fields
            .iter()
            .find(|(api, _)| field.starts_with(api))
            .map_or("form", |(_, form)| *form);
        Self::one(at, failure.message)
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, error)| error.as_str())
    }
}

/// What a refused form sent, shown again in its fields instead of what is stored.
#[derive(Default)]
pub struct Kept(pub Vec<(&'static str, String)>);

impl Kept {
    pub fn one(field: &'static str, text: String) -> Self {
        Self(vec![(field, text)])
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, text)| text.as_str())
    }

    /// Whether field `name` was sent as `value` (a choice to show chosen again).
    pub fn is(&self, name: &str, value: &str) -> bool {
        self.field(name) == Some(value)
    }

    /// What `form` sent in `fields`, trimmed.
    pub fn of(form: &HashMap<String, String>, fields: &[&'static str]) -> Self {
        let sent = |field: &str| form.get(field).map_or("", |value| value.trim()).to_owned();
        Self(fields.iter().map(|field| (*field, sent(field))).collect())
    }
}

/// The disable / enable form of a token or an owner: `enabled=true` enables, anything else
/// disables, with the optional `reason` (its rule's message next to it when it breaks it).
pub fn state_change(form: &HashMap<String, String>) -> Result<StateChange, FormErrors> {
    let enabled = form.get("enabled").map(String::as_str) == Some("true");
    let reason = form
        .get("reason")
        .map(|reason| reason.trim())
        .filter(|reason| !reason.is_empty())
        .map(StateReason::parse)
        .transpose()
        .map_err(|err| FormErrors::one("reason", err.to_string()))?;
    Ok(StateChange { enabled, reason })
}

/// The items of a comma-separated field, trimmed, the empty ones dropped.
pub fn list(text: &str) -> Vec<&str> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::StatusCode;

    #[test]
    fn a_refusal_lands_next_to_the_field_it_names() {
        let failure = AdminFailure::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_role", "bad")
            .field("addRoles[1]");
        let errors =
            FormErrors::refused(failure, &[("removeRoles", "remove"), ("addRoles", "add")]);
        assert_eq!(errors.field("add"), Some("bad"));
        let failure = AdminFailure::new(StatusCode::CONFLICT, "role_limit", "too many");
        let errors = FormErrors::refused(failure, &[("addRoles", "add")]);
        assert_eq!(errors.field("form"), Some("too many"));
    }

    #[test]
    fn a_list_drops_blanks() {
        assert_eq!(list(" a, ,b ,"), vec!["a", "b"]);
        assert!(list("  ").is_empty());
    }
}
