//! The shapes every route shares: the riavzon envelope (success, and failure with the exact
//! reasons a route answers as an enum), the plain `{"error"}` bodies, the admin error body and
//! the 429 body. Each is built from the values the code answers with, not retyped.

use std::collections::BTreeMap;

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, Ref, RefOr};
use utoipa::ToSchema;

use crate::envelope::Reason;

/// The schemas a document refers to by name, gathered as operations are described.
#[derive(Default)]
pub struct Components(pub BTreeMap<String, RefOr<Schema>>);

impl Components {
    /// A reference to `T`'s schema, registering it and the schemas it refers to.
    pub fn of<T: ToSchema>(&mut self) -> RefOr<Schema> {
        let mut nested = Vec::new();
        T::schemas(&mut nested);
        for (name, schema) in nested {
            self.0.entry(name).or_insert(schema);
        }
        let name = T::name().into_owned();
        self.0.entry(name.clone()).or_insert_with(T::schema);
        Ref::from_schema_name(name).into()
    }
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// A string that is exactly one of `values`.
pub fn one_of_strings<S: Into<String>>(values: impl IntoIterator<Item = S>) -> RefOr<Schema> {
    let values: Vec<String> = values.into_iter().map(Into::into).collect();
    string().enum_values(Some(values)).into()
}

fn date_time() -> RefOr<Schema> {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .into()
}

fn closed(object: ObjectBuilder) -> RefOr<Schema> {
    object.additional_properties(Some(false_schema())).into()
}

fn false_schema() -> utoipa::openapi::schema::AdditionalProperties<Schema> {
    utoipa::openapi::schema::AdditionalProperties::FreeForm(false)
}

/// `true` or `false` and nothing else.
pub fn exactly(value: bool) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .enum_values(Some([value]))
}

/// The riavzon envelope: `{"ok":<ok>,"date":…,"<field>":<value>}`.
fn envelope(ok: bool, field: &str, value: RefOr<Schema>) -> RefOr<Schema> {
    closed(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("ok", exactly(ok))
            .property("date", date_time())
            .property(field, value)
            .required("ok")
            .required("date")
            .required(field),
    )
}

/// `{"ok":true,"date":…,"data":…}`.
pub fn success(data: RefOr<Schema>) -> RefOr<Schema> {
    envelope(true, "data", data)
}

/// `{"ok":false,"date":…,"reason":…}` with `reason` one of `reasons`, word for word.
pub fn failure(reasons: &[Reason]) -> RefOr<Schema> {
    let texts: Vec<String> = reasons.iter().map(|r| r.as_str().into_owned()).collect();
    envelope(false, "reason", one_of_strings(texts))
}

/// `{"ok":false,"date":…,"reason":…}` with a `reason` that starts with `prefix` (letters,
/// spaces and `:` only: it is used as a pattern as it is).
pub fn failure_starting(prefix: &str) -> RefOr<Schema> {
    let reason = string().pattern(Some(format!("^{prefix}"))).into();
    envelope(false, "reason", reason)
}

/// `{"error": <one of texts>}`, or any text when `texts` is empty.
pub fn error(texts: &[&str]) -> RefOr<Schema> {
    let error = if texts.is_empty() {
        string().into()
    } else {
        one_of_strings(texts.iter().copied())
    };
    closed(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("error", error)
            .required("error"),
    )
}

/// The 401s of `/api/manage/*`: `{"ok":false,"error":"Missing Bearer token"}`, or
/// `{"error":<why>}` for a bad access token or a malformed payload.
pub fn bearer_refused() -> RefOr<Schema> {
    let missing = closed(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("ok", exactly(false))
            .property("error", one_of_strings(["Missing Bearer token"]))
            .required("ok")
            .required("error"),
    );
    OneOfBuilder::new().item(missing).item(error(&[])).into()
}

/// `{"error":"Too many requests","retry":<seconds>|"permanent"}`.
pub fn too_many_requests() -> RefOr<Schema> {
    let retry = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .item(one_of_strings(["permanent"]));
    closed(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("error", one_of_strings(["Too many requests"]))
            .property("retry", retry)
            .required("error")
            .required("retry"),
    )
}

/// A JSON object with any keys (`additionalProperties: true`), so that generated clients can
/// read them: an audit event's `detail`, whose keys depend on its kind.
pub fn free_object() -> RefOr<Schema> {
    use utoipa::openapi::schema::AdditionalProperties;
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .into()
}

/// RFC 9457 problem details, the one shape of every admin failure
/// (`application/problem+json`); registered once as the `Problem` component.
pub fn problem() -> RefOr<Schema> {
    let status = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(400))
        .maximum(Some(599));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "Problem details (RFC 9457). `code` is stable for programs; `detail` is for people; \
             `field` names the request field at fault when there is one; `missingScope` (403 \
             `forbidden`) the admin scope the credential lacks.",
        ))
        .property("type", string())
        .property("title", string())
        .property("status", status)
        .property("detail", string())
        .property("code", string())
        .property("field", string())
        .property("missingScope", string())
        .required("type")
        .required("title")
        .required("status")
        .required("detail")
        .required("code")
        .into()
}

/// An IP address (v4 or v6) or an IPv4 CIDR range, as the IP lists accept them (IPv6 ranges
/// are accepted too; the schema leaves them to the description).
pub fn ip_entry() -> RefOr<Schema> {
    const V4_OCTET: &str = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    let v4_cidr = format!("^({V4_OCTET}\\.){{3}}{V4_OCTET}/(3[0-2]|[12]?[0-9])$");
    let format = |format| {
        string()
            .format(Some(SchemaFormat::KnownFormat(format)))
            .into()
    };
    let v4: RefOr<Schema> = format(KnownFormat::Ipv4);
    let v6: RefOr<Schema> = format(KnownFormat::Ipv6);
    utoipa::openapi::schema::AnyOfBuilder::new()
        .item(v4)
        .item(v6)
        .item(string().pattern(Some(v4_cidr)))
        .description(Some(
            "An IPv4 or IPv6 address, or a CIDR range (`10.0.0.0/8`, `2001:db8::/32`).",
        ))
        .into()
}

/// A list of IP entries (at most 100; empty = anywhere).
pub fn ip_list() -> RefOr<Schema> {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(ip_entry())
        .max_items(Some(crate::domain::IpRestriction::MAX_ENTRIES))
        .into()
}

/// The BFF's `ipv4`: a list of entries, or one entry as a bare string; `null` = anywhere.
pub fn bff_ip_list() -> RefOr<Schema> {
    utoipa::openapi::schema::AnyOfBuilder::new()
        .item(ip_list())
        .item(ip_entry())
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

/// An IP address to check a restriction against; `null` = none given.
pub fn optional_ip() -> RefOr<Schema> {
    utoipa::openapi::schema::AnyOfBuilder::new()
        .item(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Ipv4))))
        .item(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Ipv6))))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

/// A token name: 1–50 characters, none of them a control character.
pub fn token_name() -> RefOr<Schema> {
    string()
        .min_length(Some(1))
        .max_length(Some(crate::domain::TokenName::MAX_CHARS))
        .pattern(Some("^[^\\u0000-\\u001F\\u007F-\\u009F]*$"))
        .into()
}

/// A token lifetime in ms (`Lifetime`); `null` = never expires.
pub fn lifetime_ms() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::Array(vec![
            Type::Integer,
            Type::Null,
        ]))
        .minimum(Some(1))
        .maximum(Some(crate::domain::Lifetime::MAX_MS))
        .into()
}

/// A role name (`RoleName`).
pub fn role_name() -> RefOr<Schema> {
    string()
        .min_length(Some(1))
        .max_length(Some(crate::domain::access::RoleName::MAX_CHARS))
        .pattern(Some("^[A-Za-z0-9_.:-]+$"))
        .into()
}

/// A list of role names (at most 100).
pub fn role_names() -> RefOr<Schema> {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(role_name())
        .max_items(Some(crate::domain::access::limits::TOKEN_ROLES))
        .into()
}

/// A grant: a permission (dot-separated segments), `prefix.*`, or `*`.
pub fn grant() -> RefOr<Schema> {
    string()
        .min_length(Some(1))
        .max_length(Some(crate::domain::access::PermissionName::MAX_CHARS + 2))
        .pattern(Some(GRANT_PATTERN))
        .into()
}

pub const GRANT_PATTERN: &str = "^(\\*|[A-Za-z0-9_:-]+(\\.[A-Za-z0-9_:-]+)*(\\.\\*)?)$";

/// A list of grants (at most 1,000).
pub fn grants() -> RefOr<Schema> {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(grant())
        .max_items(Some(crate::domain::access::limits::TOKEN_PERMISSIONS))
        .into()
}

/// A permission query (at most 1,000 characters).
pub fn permission_query() -> RefOr<Schema> {
    string()
        .max_length(Some(crate::domain::access::Query::MAX_CHARS))
        .into()
}
