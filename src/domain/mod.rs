//! Pure token domain: formats, parsing and checks. No I/O, no clock, no database.

pub mod access;
pub mod actor;
pub mod analytics;
pub mod credential;
mod digest;
pub mod forward_auth;
pub(crate) mod ip;
mod key;
mod lifetime;
pub mod metadata;
mod name;
mod prefix;
mod privilege;
mod public_id;
pub mod quota;
pub mod record;
pub mod rollup;
pub mod session;
pub mod state;
mod user_id;
pub mod webhook;

pub use actor::{Actor, ActorKind};
pub use digest::Digest;
pub use ip::{IpRestriction, IpRestrictionError};
pub use key::{checksum_matches, checksum_of, GeneratedKey, KeyError, RawKey};
pub use lifetime::{Lifetime, LifetimeError};
pub use metadata::{Metadata, MetadataError, MetadataPatch};
pub use name::{NameError, TokenName};
pub use prefix::{Prefix, PrefixError};
pub use privilege::{Privilege, PrivilegeError};
pub use public_id::{PublicIdError, PublicIdentifier};
pub use user_id::{UserId, UserIdError};

use rand::RngCore;

/// 32 bytes from the operating system's CSPRNG as 64 hex characters (admin secrets).
pub fn random_secret_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// 64 bytes from the operating system's CSPRNG, as 128 lower-case hex characters.
pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 64];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}
