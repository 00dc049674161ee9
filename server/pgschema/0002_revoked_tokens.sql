-- polyroot auth server state, version 2: revoked access tokens.

-- The ID (jti claim) of a revoked access token → until when the revocation is kept:
-- when every token with that ID has expired, after which the pruner deletes it. An
-- identity's revocation, which revokes all of its tokens, is its enrolment record's.
CREATE TABLE revoked_tokens (
	jti text PRIMARY KEY,
	expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);
