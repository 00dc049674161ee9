-- polyroot auth server state, version 1: what DataDir/server.db holds, for replicas
-- that share one database. Records are stored as the server encodes them, so that
-- both stores read and write the same bytes.

-- idhash → the registrar's enrolment record (JSON); app_id indexes every enrolment
-- of an app-level ID.
CREATE TABLE enrolments (
	idhash bytea PRIMARY KEY CHECK (length(idhash) = 32),
	app_id text NOT NULL,
	record jsonb NOT NULL
);
CREATE INDEX enrolments_app_id ON enrolments (app_id, idhash);

-- The ID of an enrolment code (wire.CodeSecrets) → its record (JSON), kept once used
-- with its answer until expires_at.
CREATE TABLE codes (
	code_id bytea PRIMARY KEY,
	expires_at timestamptz NOT NULL,
	record jsonb NOT NULL
);
CREATE INDEX codes_expires_at ON codes (expires_at);

-- idhash (or the all-zero decoy key) → failure record: always 20 bytes, so every
-- failure writes as much.
CREATE TABLE failures (
	key bytea PRIMARY KEY,
	record bytea NOT NULL
);

-- Login sessions between pass 1 and pass 2, sealed with a key the replicas hold and
-- the database does not; taken (deleted) once.
CREATE TABLE sessions (
	id bytea PRIMARY KEY,
	expires_at timestamptz NOT NULL,
	state bytea NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
