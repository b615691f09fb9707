-- Customer rate limits and credits (SPEC B5), as in sql/mysql/0006_quotas.sql.
CREATE TABLE IF NOT EXISTS quota_limits (
    scope       TEXT    NOT NULL,
    subject     INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    max_uses    INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    auto_apply  INTEGER NOT NULL,
    PRIMARY KEY (scope, subject, name)
);

CREATE TABLE IF NOT EXISTS quota_credits (
    scope           TEXT    NOT NULL,
    subject         INTEGER NOT NULL,
    remaining       INTEGER NOT NULL,
    refill_interval TEXT    NULL,
    refill_amount   INTEGER NULL,
    refill_day      INTEGER NULL,
    refilled_at_ms  INTEGER NOT NULL,
    generation      INTEGER NOT NULL,
    PRIMARY KEY (scope, subject)
);
