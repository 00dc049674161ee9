-- polyroot auth server state, version 4: PIN checks in flight.

-- A replica holds a slot here while it checks a pass 2 of an identity hash, and frees
-- it once the outcome is stored, so that all replicas together check at most the
-- identity's tries left at once. Transient, hence UNLOGGED: a crash of the database
-- ends every check anyway. expires bounds the slot of a replica that died mid-check.
CREATE UNLOGGED TABLE login_tries (
	idhash bytea NOT NULL,
	slot bytea NOT NULL,
	expires timestamptz NOT NULL,
	PRIMARY KEY (idhash, slot)
);
CREATE INDEX login_tries_expires ON login_tries (expires);
