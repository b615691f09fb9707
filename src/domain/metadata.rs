//! Admin-only key–value metadata of a token (SPEC B1): parsed and checked here, so nothing
//! downstream re-checks.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// Limits of SPEC B1.
pub const MAX_KEYS: usize = 50;
pub const MAX_KEY_LEN: usize = 40;
pub const MAX_STRING_CHARS: usize = 500;

/// A rule broken by one key; answered as a 422 naming both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {rule}")]
pub struct MetadataError {
    /// The offending key (empty when the problem is the whole value).
    pub key: String,
    pub rule: &'static str,
}

pub const RULE_NOT_OBJECT: &str = "metadata must be a JSON object";
pub const RULE_KEY: &str = "keys must be 1 to 40 characters of A-Z, a-z, 0-9 and _";
pub const RULE_TOO_MANY: &str = "a token has at most 50 metadata keys";
pub const RULE_STRING: &str = "string values are at most 500 characters";
pub const RULE_TYPE: &str =
    "values must be a string, number, boolean or null (no objects or arrays)";

/// A token's metadata: at most 50 keys, flat values. Ordered by key, so it prints stably.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Metadata(BTreeMap<String, Value>);

/// An object of at most 50 keys (1–40 of `A-Za-z0-9_`) with flat values, in the OpenAPI
/// document.
impl utoipa::PartialSchema for Metadata {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        let value = ObjectBuilder::new().schema_type(SchemaType::Array(vec![
            Type::String,
            Type::Number,
            Type::Boolean,
            Type::Null,
        ]));
        let key = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!("^[A-Za-z0-9_]{{1,{MAX_KEY_LEN}}}$")));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property_names(Some(key))
            .additional_properties(Some(value))
            .max_properties(Some(MAX_KEYS))
            .description(Some("Admin-only metadata (SPEC B1)."))
            .into()
    }
}

impl utoipa::ToSchema for Metadata {}

/// A merge-patch: present keys are set, `null` removes a key, absent keys are untouched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataPatch(BTreeMap<String, Value>);

impl Metadata {
    /// A whole metadata object (creation, replace-all). `null` values are kept as values.
    pub fn parse(value: &Value) -> Result<Self, MetadataError> {
        let entries = checked_entries(value)?;
        if entries.len() > MAX_KEYS {
            return Err(too_many());
        }
        Ok(Self(entries))
    }

    /// Reads what the store holds (`None` column = no metadata; already checked when written,
    /// re-checked all the same); `None` when it is not valid metadata.
    pub fn from_stored(column: Option<&str>) -> Option<Self> {
        let Some(json) = column else {
            return Some(Self::default());
        };
        let value: Value = serde_json::from_str(json).ok()?;
        Self::parse(&value).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn keys(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// The stored form: a JSON object, or `None` when empty.
    pub fn to_stored(&self) -> Option<String> {
        (!self.is_empty()).then(|| Value::Object(self.0.clone().into_iter().collect()).to_string())
    }

    /// Applies a merge-patch; answers the keys whose value changed (set, changed or removed).
    pub fn apply(&mut self, patch: &MetadataPatch) -> Result<Vec<String>, MetadataError> {
        let mut next = self.0.clone();
        for (key, value) in &patch.0 {
            if value.is_null() {
                next.remove(key);
            } else {
                next.insert(key.clone(), value.clone());
            }
        }
        if next.len() > MAX_KEYS {
            return Err(too_many());
        }
        let changed = changed_keys(&self.0, &next);
        self.0 = next;
        Ok(changed)
    }

    /// Replaces everything; answers the keys whose value changed.
    pub fn replace(&mut self, with: Metadata) -> Vec<String> {
        let changed = changed_keys(&self.0, &with.0);
        self.0 = with.0;
        changed
    }
}

impl MetadataPatch {
    pub fn parse(value: &Value) -> Result<Self, MetadataError> {
        let entries = checked_entries(value)?;
        if entries.values().filter(|v| !v.is_null()).count() > MAX_KEYS {
            return Err(too_many());
        }
        Ok(Self(entries))
    }
}

fn too_many() -> MetadataError {
    MetadataError {
        key: String::new(),
        rule: RULE_TOO_MANY,
    }
}

/// Every key and value checked; nothing transformed.
fn checked_entries(value: &Value) -> Result<BTreeMap<String, Value>, MetadataError> {
    let Value::Object(object) = value else {
        return Err(MetadataError {
            key: String::new(),
            rule: RULE_NOT_OBJECT,
        });
    };
    let mut entries = BTreeMap::new();
    for (key, value) in object {
        let fail = |rule| MetadataError {
            key: key.clone(),
            rule,
        };
        let key_ok = !key.is_empty()
            && key.len() <= MAX_KEY_LEN
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !key_ok {
            return Err(fail(RULE_KEY));
        }
        match value {
            Value::String(text) if text.chars().count() > MAX_STRING_CHARS => {
                return Err(fail(RULE_STRING))
            }
            Value::Object(_) | Value::Array(_) => return Err(fail(RULE_TYPE)),
            _ => {}
        }
        entries.insert(key.clone(), value.clone());
    }
    Ok(entries)
}

fn changed_keys(before: &BTreeMap<String, Value>, after: &BTreeMap<String, Value>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|key| before.get(*key) != after.get(*key))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_authpi_examples_are_judged_as_documented() {
        for bad in [
            "billing-account",
            "crm id",
            "salesforce.id",
            "user@reference",
            "",
        ] {
            let err = Metadata::parse(&json!({ bad: 1 })).unwrap_err();
            assert_eq!((err.key.as_str(), err.rule), (bad, RULE_KEY), "{bad:?}");
        }
        let good =
            json!({"billing_account": "acct_1", "isLegacyUser": true, "migration_batch_3": 3});
        assert_eq!(Metadata::parse(&good).unwrap().len(), 3);
        for (value, key) in [
            (json!({"config": {"nested": "object"}}), "config"),
            (json!({"tags": ["a"]}), "tags"),
        ] {
            assert_eq!(Metadata::parse(&value).unwrap_err().key, key);
        }
    }

    #[test]
    fn limits_are_firm() {
        let long = "x".repeat(501);
        assert_eq!(
            Metadata::parse(&json!({"k": long})).unwrap_err().rule,
            RULE_STRING
        );
        assert!(Metadata::parse(&json!({"k": "é".repeat(500)})).is_ok());
        assert!(Metadata::parse(&json!({ "k".repeat(41): 1 })).is_err());
        let fifty: serde_json::Map<String, Value> =
            (0..50).map(|i| (format!("k{i}"), json!(i))).collect();
        let mut metadata = Metadata::parse(&Value::Object(fifty)).unwrap();
        let patch = MetadataPatch::parse(&json!({"k50": 1})).unwrap();
        assert_eq!(metadata.apply(&patch).unwrap_err().rule, RULE_TOO_MANY);
        assert_eq!(metadata.len(), 50, "a refused patch changes nothing");
    }

    #[test]
    fn merge_patch_sets_removes_and_leaves_the_rest() {
        let mut metadata = Metadata::parse(&json!({"a": 1, "b": "x", "c": true})).unwrap();
        let patch = MetadataPatch::parse(&json!({"a": 2, "b": null, "d": null, "e": 1.5})).unwrap();
        assert_eq!(metadata.apply(&patch).unwrap(), vec!["a", "b", "e"]);
        assert_eq!(
            serde_json::to_value(&metadata).unwrap(),
            json!({"a": 2, "c": true, "e": 1.5})
        );
    }
}
