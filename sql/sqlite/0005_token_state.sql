-- Disabling (SPEC B10), as in sql/mysql/0008_token_state.sql.
ALTER TABLE api_tokens ADD COLUMN disabled_at INTEGER NULL;
ALTER TABLE api_tokens ADD COLUMN disabled_reason TEXT NULL;
ALTER TABLE api_tokens ADD COLUMN disabled_by_type TEXT NULL;
ALTER TABLE api_tokens ADD COLUMN disabled_by_id TEXT NULL;
ALTER TABLE api_tokens ADD COLUMN disabled_by_name TEXT NULL;

CREATE TABLE IF NOT EXISTS owner_states (
    user_id          INTEGER NOT NULL PRIMARY KEY,
    disabled_at      INTEGER NOT NULL,
    disabled_reason  TEXT    NULL,
    disabled_by_type TEXT    NOT NULL,
    disabled_by_id   TEXT    NULL,
    disabled_by_name TEXT    NULL
);
