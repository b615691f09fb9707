-- Customer rate limits and credits (SPEC B5), on a token (scope 't', subject = api_tokens.id)
-- or on an owner (scope 'u', subject = user id). Times in ms since the Unix epoch, UTC.
CREATE TABLE IF NOT EXISTS quota_limits (
    scope       CHAR(1)         NOT NULL,
    subject     BIGINT UNSIGNED NOT NULL,
    name        VARCHAR(64)     NOT NULL,
    max_uses    BIGINT UNSIGNED NOT NULL,
    duration_ms BIGINT UNSIGNED NOT NULL,
    auto_apply  TINYINT(1)      NOT NULL,
    PRIMARY KEY (scope, subject, name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- `remaining` is what the store holds: credits leased to an instance (or to Redis) and not yet
-- spent are not in it. A lease or a change takes the row lock; `generation` changes with every
-- refill and every `set`, voiding credits leased under an older one.
CREATE TABLE IF NOT EXISTS quota_credits (
    scope           CHAR(1)          NOT NULL,
    subject         BIGINT UNSIGNED  NOT NULL,
    remaining       BIGINT UNSIGNED  NOT NULL,
    refill_interval VARCHAR(7)       NULL,
    refill_amount   BIGINT UNSIGNED  NULL,
    refill_day      TINYINT UNSIGNED NULL,
    refilled_at_ms  BIGINT           NOT NULL,
    generation      BIGINT UNSIGNED  NOT NULL,
    PRIMARY KEY (scope, subject)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
