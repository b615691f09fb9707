//! What the operations are described with besides the code: the security schemes' names and
//! the configuration values that appear in answers. A leaf: the operations read it, it reads
//! nothing of the document.

/// The security scheme of `/api/manage/*`: the BFF's HS256 access token.
pub const BFF_SCHEME: &str = "bff_jwt";
/// The security scheme of `/api/admin/*`: an admin secret.
pub const ADMIN_SCHEME: &str = "admin_bearer";
/// The public verification's key, in the `x-api-key` header.
pub const API_KEY_SCHEME: &str = "api_key";

/// What the document depends on besides the code: values from the configuration that appear
/// in answers word for word.
#[derive(Debug, Clone, Copy)]
pub struct DocContext {
    /// `api_tokens.limit_tokens_per_user`, part of a reason text.
    pub token_limit: u32,
}
