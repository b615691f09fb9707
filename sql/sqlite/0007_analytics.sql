-- Verification analytics (SPEC B11), as in sql/mysql/0010_analytics.sql.
CREATE TABLE IF NOT EXISTS analytics_minute (
    token_id INTEGER NOT NULL,
    bucket   INTEGER NOT NULL,
    code     INTEGER NOT NULL,
    tags     TEXT    NOT NULL,
    user_id  INTEGER NOT NULL,
    total    INTEGER NOT NULL,
    credits  INTEGER NOT NULL,
    PRIMARY KEY (bucket, token_id, code, tags)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_analytics_minute_token ON analytics_minute (token_id, bucket);
CREATE INDEX IF NOT EXISTS idx_analytics_minute_user ON analytics_minute (user_id, bucket);
CREATE TABLE IF NOT EXISTS analytics_hour (
    token_id INTEGER NOT NULL,
    bucket   INTEGER NOT NULL,
    code     INTEGER NOT NULL,
    tags     TEXT    NOT NULL,
    user_id  INTEGER NOT NULL,
    total    INTEGER NOT NULL,
    credits  INTEGER NOT NULL,
    PRIMARY KEY (bucket, token_id, code, tags)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_analytics_hour_token ON analytics_hour (token_id, bucket);
CREATE INDEX IF NOT EXISTS idx_analytics_hour_user ON analytics_hour (user_id, bucket);
CREATE TABLE IF NOT EXISTS analytics_day (
    token_id INTEGER NOT NULL,
    bucket   INTEGER NOT NULL,
    code     INTEGER NOT NULL,
    tags     TEXT    NOT NULL,
    user_id  INTEGER NOT NULL,
    total    INTEGER NOT NULL,
    credits  INTEGER NOT NULL,
    PRIMARY KEY (bucket, token_id, code, tags)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_analytics_day_token ON analytics_day (token_id, bucket);
CREATE INDEX IF NOT EXISTS idx_analytics_day_user ON analytics_day (user_id, bucket);
