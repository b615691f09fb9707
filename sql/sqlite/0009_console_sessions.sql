-- Admin console sessions (SPEC B14), as in sql/mysql/0012_console_sessions.sql. Times are
-- milliseconds since the epoch.
CREATE TABLE IF NOT EXISTS console_sessions (
    id                TEXT    NOT NULL PRIMARY KEY,
    credential_digest TEXT    NOT NULL,
    actor_type        TEXT    NOT NULL,
    actor_id          TEXT    NULL,
    actor_name        TEXT    NULL,
    csrf              TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    seen_at           INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_console_sessions_credential ON console_sessions (credential_digest);
CREATE INDEX IF NOT EXISTS ix_console_sessions_seen ON console_sessions (seen_at);
