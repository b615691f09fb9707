-- Rotation with a grace period (SPEC B10), as in sql/mysql/0009_rotation_grace.sql.
ALTER TABLE api_tokens ADD COLUMN replaced_by INTEGER NULL;
ALTER TABLE api_tokens ADD COLUMN rotated_at INTEGER NULL;
CREATE INDEX IF NOT EXISTS idx_api_tokens_replaced_by ON api_tokens (replaced_by);
