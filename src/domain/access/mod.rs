//! Permissions, roles, what a token is granted, and the query language a verification checks
//! against them (SPEC B4). Pure: no I/O.

mod grants;
mod permission;
mod query;
mod role;
pub mod scope;

pub use grants::Grants;
pub use permission::{Grant, PermissionError, PermissionName};
pub use query::{Query, QueryError, Term};
pub use role::{
    limits, sorted_texts, AccessChange, AccessLimit, DescriptionError, NewRole, RoleChange,
    RoleDescription, RoleName, RoleNameError, RoleRecord, TokenAccess,
};
pub use scope::Scopes;
