//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the route table (so a route
//! cannot be registered without being described, nor described without being registered) and
//! from the types the handlers read and write (SPEC B7).

mod context;
pub(super) mod operations;
pub(super) mod schemas;

pub use context::{DocContext, ADMIN_SCHEME, API_KEY_SCHEME, BFF_SCHEME};

pub(super) use operations::Describe;

use actix_web::web::Bytes;
use utoipa::openapi::path::{HttpMethod, PathItem, Paths};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder};

use super::bff::Action;
use super::caller::Access;
use super::routes::{Doc, TABLE};
use schemas::Components;

/// The operations' groups.
const TAGS: [(&str, &str); 3] = [
    (
        "public",
        "Verification for machine clients, and the probes.",
    ),
    (
        "manage",
        "riavzon's `/api/manage/*`: a BFF acting for a signed-in user.",
    ),
    ("admin", "The admin API: trusted servers and operators."),
];

/// The whole document.
pub fn document(ctx: &DocContext) -> OpenApi {
    let mut components = Components::default();
    let mut paths = Paths::new();
    for entry in TABLE {
        let spec = entry.spec;
        let tag = match spec.access {
            Access::Public => "public",
            Access::User => "manage",
            Access::Admin => "admin",
        };
        match entry.doc {
            Doc::One(id, describe) => {
                let (summary, about) = operations::catalogue::about(id).unwrap_or(("", ""));
                let op = describe(Describe::new(&mut components, ctx, id, tag, summary));
                let op = scoped(described(op, about), spec.scope);
                let method = spec.method.map_or(HttpMethod::Get, http_method);
                add(&mut paths, &documented_path(spec.path), method, op);
            }
            Doc::PerAction => {
                for action in Action::ALL {
                    let path = spec.path.replace("{action}", action.as_str());
                    let (id, summary, about) = operations::catalogue::action(action.as_str());
                    let d = Describe::new(&mut components, ctx, &id, tag, summary);
                    let op = described(operations::manage(d, action), about);
                    let method = http_method(action.method());
                    add(&mut paths, &path, method, op);
                }
            }
        }
    }
    let api_key = ApiKeyValue::with_description(
        "x-api-key",
        "The raw API key (`api_…`) of the token being verified.",
    );
    let mut schemas = ComponentsBuilder::new()
        .security_scheme(API_KEY_SCHEME, SecurityScheme::ApiKey(ApiKey::Header(api_key)))
        .security_scheme(
            BFF_SCHEME,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An HS256 access token signed with `auth.jwt_secret`; `sub` is the user id.",
                    ))
                    .build(),
            ),
        )
        .security_scheme(
            ADMIN_SCHEME,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An admin secret whose SHA-256 digest is in `auth.admin_tokens`.",
                    ))
                    .build(),
            ),
        );
    for (name, schema) in components.0 {
        schemas = schemas.schema(name, schema);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("iam-tokens")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(env!("CARGO_PKG_DESCRIPTION")))
                .license(Some(
                    utoipa::openapi::info::LicenseBuilder::new()
                        .name(env!("CARGO_PKG_LICENSE"))
                        .identifier(Some(env!("CARGO_PKG_LICENSE")))
                        .build(),
                ))
                .build(),
        )
        .servers(Some([utoipa::openapi::Server::new("/")]))
        .tags(Some(TAGS.map(|(name, description)| {
            utoipa::openapi::tag::TagBuilder::new()
                .name(name)
                .description(Some(description))
                .build()
        })))
        .paths(paths)
        .components(Some(schemas.build()))
        .build()
}

/// The catalogue's description first, then what the operation adds of its own.
fn described(
    mut op: utoipa::openapi::path::Operation,
    about: &str,
) -> utoipa::openapi::path::Operation {
    op.description = match op.description.take() {
        Some(own) if !about.is_empty() => Some(format!("{about}\n\n{own}")),
        Some(own) => Some(own),
        None => Some(about.to_owned()),
    };
    op
}

/// An admin operation says which scope it needs: in its description, and as
/// `x-required-scope` for programs.
fn scoped(
    mut op: utoipa::openapi::path::Operation,
    scope: Option<&str>,
) -> utoipa::openapi::path::Operation {
    let Some(scope) = scope else { return op };
    let needs = match scope.split_once('|') {
        None => format!("Requires the admin scope `{scope}`."),
        Some(_) => format!(
            "Requires one of the admin scopes `{}`.",
            scope.replace('|', "`, `")
        ),
    };
    op.description = Some(match op.description.take() {
        Some(text) => format!("{text}\n\n{needs}"),
        None => needs,
    });
    let extension = utoipa::openapi::extensions::ExtensionsBuilder::new()
        .add("x-required-scope", scope)
        .build();
    op.extensions = Some(extension);
    op
}

/// A route's path as OpenAPI writes it: `{tail:.*}` (actix's pattern) is `{tail}`.
pub(crate) fn documented_path(path: &str) -> String {
    let (mut out, mut in_braces, mut in_pattern) =
        (String::with_capacity(path.len()), false, false);
    for c in path.chars() {
        match c {
            '{' => in_braces = true,
            '}' => (in_braces, in_pattern) = (false, false),
            ':' if in_braces => in_pattern = true,
            _ => {}
        }
        if !in_pattern {
            out.push(c);
        }
    }
    out
}

fn add(paths: &mut Paths, path: &str, method: HttpMethod, op: utoipa::openapi::path::Operation) {
    match paths.paths.get_mut(path) {
        Some(item) => item.merge_operations(PathItem::new(method, op)),
        None => {
            paths
                .paths
                .insert(path.to_owned(), PathItem::new(method, op));
        }
    }
}

fn http_method(method: &str) -> HttpMethod {
    match method {
        "HEAD" => HttpMethod::Head,
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

/// The document as served, rendered once per application.
pub fn rendered(ctx: &DocContext) -> Bytes {
    // The document is built from our own types; it always serializes.
    let mut document = serde_json::to_value(document(ctx)).unwrap_or_default();
    camel_case_links(&mut document);
    Bytes::from(serde_json::to_vec(&document).unwrap_or_default())
}

/// utoipa 5.5 writes a Link Object's fields in snake case (`operation_id`, `request_body`);
/// OpenAPI names them `operationId`, `operationRef`, `requestBody`.
fn camel_case_links(document: &mut serde_json::Value) {
    let Some(paths) = document.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let responses = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let Some(links) = response.get_mut("links").and_then(|l| l.as_object_mut()) else {
            continue;
        };
        for link in links.values_mut().filter_map(|l| l.as_object_mut()) {
            for (snake, camel) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(value) = link.remove(snake) {
                    link.insert(camel.to_owned(), value);
                }
            }
        }
    }
}
