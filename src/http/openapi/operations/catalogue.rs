//! Every operation's summary and description, in one place (the route table names the
//! operation; this says what it is for). An operation's own `explain` adds to it.

/// `(operationId, summary, description)`.
const CATALOGUE: &[(&str, &str, &str)] = &[
    ("verifyKey", "Verify an API key",
     "Checks the key in `x-api-key` for the privilege asked, its IP restriction, expiry, an \
      optional permission query and its customer limits and credits, and counts the use. The \
      answer is riavzon's envelope, byte for byte."),
    ("verifyForGateway", "Forward-auth for a gateway",
     "For nginx `auth_request`, Caddy `forward_auth` and Traefik `forwardAuth`: verifies the key \
      of the request the gateway forwards (`Authorization: Bearer`, else \
      `forward_auth.key_header`) under the policy of the query or of the first \
      `[[forward_auth.routes]]` rule covering it, and counts it as a verification. Forwarded \
      headers and a policy in the query are believed only from `server.trusted_proxies`. \
      Answers 200 with the caller's identity in headers, or a denial with `X-Auth-Code`; \
      `dialect=nginx` sends 400, 429 and 503 as 403 (nginx makes them 500)."),
    ("verifyForEnvoy", "Forward-auth for Envoy",
     "Envoy `ext_authz` (HTTP service, `path_prefix: /api/forward-auth`): the original path is \
      the tail, the method and host are the request's own, and the query is the client's (no \
      parameters of ours). Otherwise as `verifyForGateway`."),
    ("getHealth", "Liveness", "`OK` while the process serves requests; never asks a dependency."),
    ("headHealth", "Liveness, without a body", "As `GET /health`, for probes that send `HEAD`."),
    ("getReadiness", "Readiness",
     "200 while the database answers (and Redis, with `redis.required_for_ready`), else 503, \
      so that a load balancer takes the instance out."),
    ("headReadiness", "Readiness, without a body", "As `GET /ready`, for probes that send `HEAD`."),
    ("getOpenApiDocument", "This document", "The OpenAPI 3.1 document, generated from the route table."),
    ("getMetrics", "Prometheus metrics",
     "Counters, gauges and histograms in the text format 0.0.4; no label names a key, an id or \
      an IP."),
    ("createToken", "Create a token for any owner",
     "Creates an API key with its name, privilege, lifetime, IP restriction, metadata, roles, \
      permissions, limits and credits. The raw key is in this answer only."),
    ("getToken", "Read a token", "Everything stored about the token, never its digest."),
    ("patchTokenMetadata", "Merge-patch a token's metadata",
     "Sets the keys given, removes those set to `null`, leaves the others; audited."),
    ("replaceTokenMetadata", "Replace a token's metadata", "Replaces all of it; audited."),
    ("revokeToken", "Revoke a token", "Idempotent: `revoked` says whether this call revoked it."),
    ("rotateToken", "Rotate a token with a grace period",
     "A new key with everything of the old one (name, privilege, prefix, IPs, expiry, metadata, \
      roles, permissions, limits and credits). The old key keeps verifying until the grace ends \
      (never past its own expiry), sharing one budget of limits and credits with the new one; \
      then it expires. The raw key is in this answer only."),
    ("changeTokensInBulk", "Revoke, disable or enable many tokens",
     "Up to 1,000 token ids, or every valid token of one owner, with a result per token."),
    ("setTokenState", "Disable or enable a token",
     "A disabled token verifies as `DISABLED` (public: 401 `Token disabled`): not a use, nothing \
      charged. It is not revoked; enabling restores it exactly. Idempotent: `changed` says \
      whether this call changed it."),
    ("setUserState", "Disable or enable an owner",
     "Every token of the owner, present and future, verifies as `DISABLED` while the owner is \
      disabled; the tokens' own states are independent of it. Idempotent."),
    ("listTokenEvents", "A token's audit trail", "Every change of the token, oldest first, with who made it."),
    ("listUserTokens", "List an owner's tokens",
     "Newest first, keyset-paginated (`cursor` = the previous page's `nextCursor`), filtered by \
      status and by one metadata key."),
    ("changeTokenAccess", "Change a token's roles and permissions",
     "Adds and removes roles and direct permissions in one audited change, all or nothing."),
    ("setTokenRateLimits", "Replace a token's rate limits", "The named limits every verification of the token is charged against."),
    ("changeTokenCredits", "Change a token's credits", "Set, increment or decrement the credits left, or change the refill."),
    ("setUserRateLimits", "Replace an owner's rate limits", "Limits shared by every token of the owner."),
    ("changeUserCredits", "Change an owner's credits", "Credits shared by every token of the owner."),
    ("getUserQuota", "Read an owner's limits and credits", "With each limit's remaining uses and reset in the current window."),
    ("createRole", "Create a role", "A named set of permissions that tokens can hold."),
    ("listRoles", "List the roles", "Every role with its permissions and how many valid tokens hold it."),
    ("getRole", "Read a role", "Its permissions and how many valid tokens hold it."),
    ("updateRole", "Change a role", "Its description, and permissions added or removed."),
    ("deleteRole", "Delete a role", "Refused while valid tokens hold it, unless `force=true`."),
    ("verifyKeyDetailed", "Verify a key with full detail",
     "For trusted servers: always 200, with a `code`, the token, its metadata, roles, \
      permissions, limits and credits; charges `cost` and named limits."),
    ("listBans", "List the abuse limiters' bans", "Every permanent ban in force, with its reason."),
    ("liftBan", "Lift a ban", "In the store, in Redis and on every instance."),
    ("createCredential", "Create an admin credential",
     "A stored credential with scopes (or a preset) and an optional expiry; its secret is in \
      this answer only."),
    ("listCredentials", "List the admin credentials",
     "Every stored credential with its scopes, creator, last use and revocation; never a secret."),
    ("getCredential", "Read an admin credential", "Its scopes, creator, expiry, last use and revocation."),
    ("updateCredential", "Change an admin credential", "Its name, scopes or expiry; audited."),
    ("revokeCredential", "Revoke an admin credential", "It is refused from now on; audited."),
    ("listAuditEvents", "Read the audit log",
     "Every change, newest first, with who made it; filtered by actor, kind, token, owner and \
      time, keyset-paginated (`cursor` = the previous page's `nextCursor`)."),
    ("getVerificationAnalytics", "Read verification analytics",
     "Verifications over a range by outcome, as zero-filled series: one, or one per code, token, \
      owner or tag value (busiest first, `top` of them); filtered by token, owner, codes and tags. \
      Read from the minute, hour and day rollups; it never writes."),
    ("createWebhook", "Create a webhook endpoint",
     "Where signed events (Standard Webhooks) are sent, which types (`token.*`, `*`), and \
      whether token metadata is included; the URL is refused when it resolves to an internal \
      address. The signing secret is in this answer only."),
    ("listWebhooks", "List the webhook endpoints", "Every endpoint, enabled or not, never a secret."),
    ("getWebhook", "Read a webhook endpoint",
     "Its URL, event patterns, whether it is enabled and, when disabled, why."),
    ("updateWebhook", "Change a webhook endpoint",
     "Its URL, events, description or metadata; `enabled` disables it or enables it again."),
    ("deleteWebhook", "Delete a webhook endpoint", "With its delivery log."),
    ("rotateWebhookSecret", "Rotate a webhook secret",
     "A new secret (shown once); the old one keeps signing beside it for 24 hours."),
    ("sendWebhookTest", "Send a test event", "A `webhook.test` event to this endpoint alone."),
    ("listWebhookDeliveries", "Read the webhook delivery log",
     "Each event's delivery to each endpoint: status, attempts, the next attempt, the last \
      answer's status and up to 2 KiB of its body; filtered, keyset-paginated."),
    ("retryWebhookDelivery", "Send a delivery again",
     "A delivered or failed delivery is made pending and sent now, with its `webhook-id`."),
];

/// The BFF actions (`/api/manage/{action}`): `(action, summary, description)`.
const ACTIONS: &[(&str, &str, &str)] = &[
    (
        "new-token",
        "Create one of the signed-in user's tokens",
        "riavzon's `newToken`, for the JWT's subject.",
    ),
    (
        "revoke",
        "Revoke one of the user's tokens",
        "riavzon's `revokeToken`.",
    ),
    (
        "rotate",
        "Rotate one of the user's tokens",
        "riavzon's `rotateToken`: a new key, the old one revoked.",
    ),
    (
        "metadata",
        "Read a token's metadata snapshot",
        "riavzon's `getTokenMetadata`, with the owner's counts; not counted as a use.",
    ),
    (
        "list-metadata",
        "List the user's valid tokens",
        "riavzon's `listValidTokens`.",
    ),
    (
        "ip-restriction-update",
        "Change a token's IP restriction",
        "riavzon's `updateIpRestriction`.",
    ),
    (
        "privilege-update",
        "Change a token's privilege",
        "riavzon's `updatePrivilege`.",
    ),
];

/// An operation's summary and description.
pub fn about(id: &str) -> Option<(&'static str, &'static str)> {
    CATALOGUE
        .iter()
        .find(|(known, ..)| *known == id)
        .map(|(_, summary, description)| (*summary, *description))
}

/// A BFF action's operation id (`manageNewToken`), summary and description.
pub fn action(name: &str) -> (String, &'static str, &'static str) {
    let mut id = String::from("manage");
    for word in name.split('-') {
        let mut letters = word.chars();
        if let Some(first) = letters.next() {
            id.extend(first.to_uppercase());
            id.push_str(letters.as_str());
        }
    }
    let (summary, description) = ACTIONS
        .iter()
        .find(|(known, ..)| *known == name)
        .map_or(("", ""), |(_, summary, description)| {
            (*summary, *description)
        });
    (id, summary, description)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_action_id_is_camel_case() {
        assert_eq!(
            super::action("ip-restriction-update").0,
            "manageIpRestrictionUpdate"
        );
        assert_eq!(super::action("new-token").0, "manageNewToken");
    }
}
