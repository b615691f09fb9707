-- Admin-only metadata of a token (SPEC B1): a flat JSON object, NULL when empty.
ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS metadata JSON NULL;

-- Every mutation, written in the same transaction as the change.
CREATE TABLE IF NOT EXISTS audit_events (
    id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    token_id   BIGINT UNSIGNED NULL,
    event      VARCHAR(40)     NOT NULL,
    actor      VARCHAR(120)    NOT NULL,
    detail     JSON            NOT NULL,
    created_at DATETIME(3)     NOT NULL,
    PRIMARY KEY (id),
    KEY idx_audit_events_token (token_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
