-- Verification analytics (SPEC B11): verifications counted per bucket, token, code and tags,
-- added to by every instance's flush (additive upserts). token_id and user_id are 0 for a
-- verification that found no token; tags is the stored form of the tag set ('' for none),
-- compared byte for byte; bucket is the unix second the bucket starts at. Rows are clustered by
-- time: a flush's upserts touch neighbouring rows, a range read or a prune scans one stretch of
-- the table, and one token's or owner's series is read through its own index.
CREATE TABLE IF NOT EXISTS analytics_minute (
    token_id BIGINT UNSIGNED   NOT NULL,
    bucket   BIGINT            NOT NULL,
    code     TINYINT UNSIGNED  NOT NULL,
    tags     VARBINARY(1200)   NOT NULL,
    user_id  BIGINT UNSIGNED   NOT NULL,
    total    BIGINT UNSIGNED   NOT NULL,
    credits  BIGINT UNSIGNED   NOT NULL,
    PRIMARY KEY (bucket, token_id, code, tags),
    KEY idx_analytics_minute_token (token_id, bucket),
    KEY idx_analytics_minute_user (user_id, bucket)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS analytics_hour (
    token_id BIGINT UNSIGNED   NOT NULL,
    bucket   BIGINT            NOT NULL,
    code     TINYINT UNSIGNED  NOT NULL,
    tags     VARBINARY(1200)   NOT NULL,
    user_id  BIGINT UNSIGNED   NOT NULL,
    total    BIGINT UNSIGNED   NOT NULL,
    credits  BIGINT UNSIGNED   NOT NULL,
    PRIMARY KEY (bucket, token_id, code, tags),
    KEY idx_analytics_hour_token (token_id, bucket),
    KEY idx_analytics_hour_user (user_id, bucket)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS analytics_day (
    token_id BIGINT UNSIGNED   NOT NULL,
    bucket   BIGINT            NOT NULL,
    code     TINYINT UNSIGNED  NOT NULL,
    tags     VARBINARY(1200)   NOT NULL,
    user_id  BIGINT UNSIGNED   NOT NULL,
    total    BIGINT UNSIGNED   NOT NULL,
    credits  BIGINT UNSIGNED   NOT NULL,
    PRIMARY KEY (bucket, token_id, code, tags),
    KEY idx_analytics_day_token (token_id, bucket),
    KEY idx_analytics_day_user (user_id, bucket)
) ENGINE=InnoDB;
