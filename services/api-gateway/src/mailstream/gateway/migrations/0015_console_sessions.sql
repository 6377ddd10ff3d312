-- Owned by the gateway: the admin console's sign-in (issue 17). A user signs in with a password
-- (argon2id, PHC string; NULL = no console access until `mailstream users set-password`).
-- A session is a random id in a cookie; only its SHA-256 is kept, with the session's CSRF token.
ALTER TABLE users ADD COLUMN password_hash text;

CREATE TABLE console_sessions (
    id_hash     bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
