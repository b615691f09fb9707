//! Forward-auth (SPEC B13) as values: the path globs and rules that give a gateway's request
//! its policy (privilege, permissions, cost, named limits, whether metadata is exposed). The
//! HTTP adapter (`http/forward_auth/`) reads the original request and applies it.

mod glob;
mod path;
mod rule;

pub use glob::{GlobError, PathGlob};
pub use path::{canonical_path, PathError};
pub use rule::{NoMatch, Policy, PolicyText, RouteRule, RouteRules, RuleError};
