//! `ANY /api/forward-auth[/{tail}]` (SPEC B13): gateways (nginx `auth_request`, Caddy
//! `forward_auth`, Traefik `ForwardAuth`, Envoy `ext_authz`) ask whether a request may pass.
//! Built in steps: `origin.rs` reads the original request; the endpoint and its answers come
//! next.

mod origin;

pub use origin::{origin, Origin, OriginError};
