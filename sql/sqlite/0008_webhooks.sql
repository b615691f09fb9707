-- Webhooks (SPEC B12), as in sql/mysql/0011_webhooks.sql. Times are milliseconds since the
-- epoch.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    url              TEXT    NOT NULL,
    description      TEXT    NULL,
    events           TEXT    NOT NULL,
    include_metadata INTEGER NOT NULL DEFAULT 0,
    secret           TEXT    NOT NULL,
    previous_secret  TEXT    NULL,
    previous_until   INTEGER NULL,
    enabled          INTEGER NOT NULL DEFAULT 1,
    disabled_reason  TEXT    NULL,
    failing_since    INTEGER NULL,
    after_event      INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS webhook_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    type        TEXT    NOT NULL,
    dedupe_key  TEXT    NULL UNIQUE,
    token_id    INTEGER NULL,
    user_id     INTEGER NULL,
    name        TEXT    NULL,
    metadata    TEXT    NULL,
    actor_type  TEXT    NOT NULL,
    actor_id    TEXT    NULL,
    actor_name  TEXT    NULL,
    detail      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    fanned      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS idx_webhook_events_fanned ON webhook_events (fanned, id);
CREATE INDEX IF NOT EXISTS idx_webhook_events_created ON webhook_events (created_at);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        INTEGER NOT NULL,
    endpoint_id     INTEGER NOT NULL,
    event_type      TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NULL,
    last_attempt_at INTEGER NULL,
    response_status INTEGER NULL,
    response_body   TEXT    NULL,
    error           TEXT    NULL,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER NULL,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);

-- Which threshold events a pool of credits sent and has not re-armed (1 low, 2 exhausted).
ALTER TABLE quota_credits ADD COLUMN alerted INTEGER NOT NULL DEFAULT 0;

-- The expiry sweep reads valid tokens by expiry.
CREATE INDEX IF NOT EXISTS idx_api_tokens_valid_expiry ON api_tokens (valid, expires_at);
