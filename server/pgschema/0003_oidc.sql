-- polyroot auth server state, version 3: the OpenID Provider's state.

-- Auth requests, codes, the provider's access tokens and logouts (internal/oidcop):
-- a key → an opaque value, until expires_at, after which it is absent and the pruner
-- deletes it.
CREATE TABLE oidc_state (
	key text PRIMARY KEY,
	value bytea NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX oidc_state_expires_at ON oidc_state (expires_at);
