-- The embedded store's schema: the same tables and column names as sql/mysql/ (so `copy` moves
-- rows one to one); times are integer milliseconds since the Unix epoch (UTC).
CREATE TABLE IF NOT EXISTS api_tokens (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id                  INTEGER NOT NULL,
    api_token                TEXT    NOT NULL UNIQUE,
    public_identifier        TEXT    NOT NULL UNIQUE,
    prefix                   TEXT    NOT NULL DEFAULT 'api',
    name                     TEXT    NOT NULL,
    created_at               INTEGER NOT NULL,
    expires_at               INTEGER NULL,
    restricted_to_ip_address TEXT    NULL,
    last_used                INTEGER NULL,
    privilege_type           TEXT    NOT NULL DEFAULT 'restricted'
        CHECK (privilege_type IN ('demo', 'restricted', 'protected', 'full', 'custom')),
    usage_count              INTEGER NOT NULL DEFAULT 0,
    valid                    INTEGER NOT NULL DEFAULT 1,
    metadata                 TEXT    NULL
);
CREATE INDEX IF NOT EXISTS idx_api_tokens_user_valid ON api_tokens (user_id, valid);

CREATE TABLE IF NOT EXISTS rate_limit_bans (
    limiter    TEXT    NOT NULL,
    ban_key    TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (limiter, ban_key)
);

CREATE TABLE IF NOT EXISTS usage_flushes (
    flush_id   TEXT    NOT NULL PRIMARY KEY,
    applied_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id   INTEGER NULL,
    event      TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_audit_events_token ON audit_events (token_id, id);
