-- Stored admin credentials (SPEC B9): the digest of the secret, never the secret.
CREATE TABLE IF NOT EXISTS admin_credentials (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    digest          CHAR(64)        NOT NULL COMMENT 'hex SHA-256 of the secret',
    name            VARCHAR(64)     NOT NULL,
    scopes          TEXT            NOT NULL COMMENT 'JSON array of scope grants',
    created_at      DATETIME(3)     NOT NULL,
    created_by_type VARCHAR(16)     NOT NULL,
    created_by_id   VARCHAR(120)    NULL,
    created_by_name VARCHAR(120)    NULL,
    expires_at      DATETIME(3)     NULL,
    last_used_at    DATETIME(3)     NULL,
    last_used_ip    VARCHAR(45)     NULL,
    revoked_at      DATETIME(3)     NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_admin_credentials_digest (digest)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Who acted, as three columns (SPEC B9), and whose tokens an event is about.
ALTER TABLE audit_events
    ADD COLUMN IF NOT EXISTS actor_type VARCHAR(16)     NOT NULL DEFAULT 'system',
    ADD COLUMN IF NOT EXISTS actor_id   VARCHAR(120)    NULL,
    ADD COLUMN IF NOT EXISTS actor_name VARCHAR(120)    NULL,
    ADD COLUMN IF NOT EXISTS user_id    BIGINT UNSIGNED NULL;

-- The old `actor` text tells what it can: `user:<id>`, `admin:<configured name>`, `cli`,
-- `system`.
UPDATE audit_events SET actor_type = 'user', actor_id = SUBSTRING(actor, 6)
    WHERE actor LIKE 'user:%';
UPDATE audit_events
    SET actor_type = 'config', actor_id = SUBSTRING(actor, 7), actor_name = SUBSTRING(actor, 7)
    WHERE actor LIKE 'admin:%';
UPDATE audit_events SET actor_type = 'cli' WHERE actor = 'cli';
UPDATE audit_events SET actor_type = 'system', actor_name = 'expiry'
    WHERE actor = 'system' AND event = 'expired';
UPDATE audit_events SET actor_type = 'system', actor_name = 'limiter'
    WHERE actor = 'system' AND event = 'banned';
UPDATE audit_events e JOIN api_tokens t ON t.id = e.token_id SET e.user_id = t.user_id;
UPDATE audit_events
    SET user_id = CAST(JSON_UNQUOTE(JSON_EXTRACT(detail, '$.userId')) AS UNSIGNED)
    WHERE token_id IS NULL AND JSON_UNQUOTE(JSON_EXTRACT(detail, '$.scope')) = 'owner';

ALTER TABLE audit_events DROP COLUMN IF EXISTS actor;
ALTER TABLE audit_events
    ADD KEY idx_audit_events_actor (actor_type, actor_id, id),
    ADD KEY idx_audit_events_user (user_id, id),
    ADD KEY idx_audit_events_kind (event, id);
