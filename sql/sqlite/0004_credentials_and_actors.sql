-- Stored admin credentials and actors (SPEC B9), as in
-- sql/mysql/0007_credentials_and_actors.sql. Times are milliseconds since the epoch.
CREATE TABLE IF NOT EXISTS admin_credentials (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    digest          TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    scopes          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    created_by_type TEXT    NOT NULL,
    created_by_id   TEXT    NULL,
    created_by_name TEXT    NULL,
    expires_at      INTEGER NULL,
    last_used_at    INTEGER NULL,
    last_used_ip    TEXT    NULL,
    revoked_at      INTEGER NULL
);

ALTER TABLE audit_events ADD COLUMN actor_type TEXT NOT NULL DEFAULT 'system';
ALTER TABLE audit_events ADD COLUMN actor_id TEXT NULL;
ALTER TABLE audit_events ADD COLUMN actor_name TEXT NULL;
ALTER TABLE audit_events ADD COLUMN user_id INTEGER NULL;

UPDATE audit_events SET actor_type = 'user', actor_id = substr(actor, 6)
    WHERE actor LIKE 'user:%';
UPDATE audit_events
    SET actor_type = 'config', actor_id = substr(actor, 7), actor_name = substr(actor, 7)
    WHERE actor LIKE 'admin:%';
UPDATE audit_events SET actor_type = 'cli' WHERE actor = 'cli';
UPDATE audit_events SET actor_name = 'expiry' WHERE actor = 'system' AND event = 'expired';
UPDATE audit_events SET actor_name = 'limiter' WHERE actor = 'system' AND event = 'banned';
UPDATE audit_events
    SET user_id = (SELECT t.user_id FROM api_tokens t WHERE t.id = audit_events.token_id)
    WHERE token_id IS NOT NULL;
UPDATE audit_events SET user_id = json_extract(detail, '$.userId')
    WHERE token_id IS NULL AND json_extract(detail, '$.scope') = 'owner';

ALTER TABLE audit_events DROP COLUMN actor;
CREATE INDEX IF NOT EXISTS idx_audit_events_actor ON audit_events (actor_type, actor_id, id);
CREATE INDEX IF NOT EXISTS idx_audit_events_user ON audit_events (user_id, id);
CREATE INDEX IF NOT EXISTS idx_audit_events_kind ON audit_events (event, id);
