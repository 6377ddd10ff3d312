-- API keys grant scopes (gateway/scopes.py) and may have their own request limit ("100/10s",
-- gateway/limits.py; NULL = the MAILSTREAM_API_RATE_LIMIT setting). The keys made before keep
-- every scope.
ALTER TABLE api_keys
    ADD COLUMN scopes text[] NOT NULL DEFAULT ARRAY['send', 'emails', 'tokens', 'contacts', 'stats', 'admin'],
    ADD COLUMN rate_limit text;
