-- Disabling (SPEC B10): a disabled token keeps valid = 1 (riavzon's meaning: not revoked) and
-- verifies as disabled until it is enabled again; who did it and why are kept with it.
ALTER TABLE api_tokens
    ADD COLUMN IF NOT EXISTS disabled_at      DATETIME(3)  NULL,
    ADD COLUMN IF NOT EXISTS disabled_reason  VARCHAR(200) NULL,
    ADD COLUMN IF NOT EXISTS disabled_by_type VARCHAR(16)  NULL,
    ADD COLUMN IF NOT EXISTS disabled_by_id   VARCHAR(120) NULL,
    ADD COLUMN IF NOT EXISTS disabled_by_name VARCHAR(120) NULL;

-- A disabled owner: every token of it, present and future, verifies as disabled. A row exists
-- only while the owner is disabled.
CREATE TABLE IF NOT EXISTS owner_states (
    user_id          BIGINT UNSIGNED NOT NULL,
    disabled_at      DATETIME(3)     NOT NULL,
    disabled_reason  VARCHAR(200)    NULL,
    disabled_by_type VARCHAR(16)     NOT NULL,
    disabled_by_id   VARCHAR(120)    NULL,
    disabled_by_name VARCHAR(120)    NULL,
    PRIMARY KEY (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
