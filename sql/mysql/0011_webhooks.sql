-- Webhooks (SPEC B12): the endpoints, the outbox of events (written in the transaction of the
-- change they describe, or once per threshold crossing under a unique dedupe key) and one
-- delivery per (event, endpoint), claimed by a dispatcher by moving its next_attempt_at a lease
-- ahead (a killed dispatcher's claim falls due again).
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    url              VARCHAR(2048)   NOT NULL,
    description      VARCHAR(200)    NULL,
    events           TEXT            NOT NULL COMMENT 'JSON array of event patterns',
    include_metadata TINYINT(1)      NOT NULL DEFAULT 0,
    secret           VARCHAR(128)    NOT NULL,
    previous_secret  VARCHAR(128)    NULL,
    previous_until   DATETIME(3)     NULL,
    enabled          TINYINT(1)      NOT NULL DEFAULT 1,
    disabled_reason  VARCHAR(32)     NULL,
    failing_since    DATETIME(3)     NULL,
    after_event      BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'events up to this id are older',
    created_at       DATETIME(3)     NOT NULL,
    updated_at       DATETIME(3)     NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS webhook_events (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    type        VARCHAR(64)     NOT NULL,
    dedupe_key  VARCHAR(191)    NULL,
    token_id    BIGINT UNSIGNED NULL,
    user_id     BIGINT UNSIGNED NULL,
    name        VARCHAR(200)    NULL,
    metadata    JSON            NULL,
    actor_type  VARCHAR(16)     NOT NULL,
    actor_id    VARCHAR(191)    NULL,
    actor_name  VARCHAR(191)    NULL,
    detail      TEXT            NOT NULL,
    created_at  DATETIME(3)     NOT NULL,
    fanned      TINYINT(1)      NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    UNIQUE KEY uq_webhook_events_dedupe (dedupe_key),
    KEY idx_webhook_events_fanned (fanned, id),
    KEY idx_webhook_events_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    event_id        BIGINT UNSIGNED NOT NULL,
    endpoint_id     BIGINT UNSIGNED NOT NULL,
    event_type      VARCHAR(64)     NOT NULL,
    status          VARCHAR(16)     NOT NULL,
    attempts        INT UNSIGNED    NOT NULL DEFAULT 0,
    next_attempt_at DATETIME(3)     NULL,
    last_attempt_at DATETIME(3)     NULL,
    response_status INT             NULL,
    response_body   TEXT            NULL,
    error           VARCHAR(200)    NULL,
    created_at      DATETIME(3)     NOT NULL,
    delivered_at    DATETIME(3)     NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_webhook_deliveries_event_endpoint (event_id, endpoint_id),
    KEY idx_webhook_deliveries_due (status, next_attempt_at),
    KEY idx_webhook_deliveries_endpoint (endpoint_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Which threshold events a pool of credits sent and has not re-armed (1 low, 2 exhausted).
ALTER TABLE quota_credits ADD COLUMN IF NOT EXISTS alerted TINYINT UNSIGNED NOT NULL DEFAULT 0;

-- The expiry sweep reads valid tokens by expiry.
ALTER TABLE api_tokens ADD KEY IF NOT EXISTS idx_api_tokens_valid_expiry (valid, expires_at);
