-- flumon-intranet schema, version 2: TOTP replay guard, activation expiry, CSRF per session.
ALTER TABLE users ADD COLUMN totp_step BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN activation_expires BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN csrf TEXT NOT NULL DEFAULT '';
