// Package server is a domain's auth server: the registrar that enrols identities and
// revokes them, the verifier of polyroot's M-Pin Full mutual login, and the issuer of
// the access tokens that app backends accept (with package server/middleware).
//
// Provision fetches the server key share s_i·Q from every DTA (sealed with HPKE to a
// fresh key, requested with a registrar-signed ticket), checks each against the DTA's
// commitment in the trust bundle, and combines sQ; the caller keeps it in a keystore
// under SecretServerKey. In a threshold domain (t of n) it combines the first t valid
// shares (Lagrange at 0), cancels the rest, and fails with a *DTAError naming every
// bad or unreachable DTA when fewer than t are valid (ProvisionReport also names
// those that failed when t others sufficed). New then serves the HTTP API of internal/wire/server.go from one
// route table (Handler), with its state in a state store (stateStore; by default
// DataDir/server.db, bbolt): enrolments, the app-level ID index, pending enrolment
// codes (stored hashed), failure counts and login sessions.
//
// Besides logins, the login routes run permit renewals (internal/wire/server.go): a
// client whose permits have all expired cannot log in, so cannot get the access
// token that POST /v1/permits needs; it renews instead, with the same two passes
// marked purpose "renew" and made without a permit (A' = A, slot 0), which this
// server checks with a second pairing.Verifier over the same sQ with permits
// disabled. A successful renewal answers with the server's tag and a permit ticket,
// never an access token.
//
// # Security invariants
//
//   - sQ, the registrar key, the token key, session keys, PINs and enrolment codes
//     never appear in logs, errors or metrics; metric labels carry steps, results,
//     routes and status codes, never an identity.
//   - Wrong PIN, unknown, revoked, blocked and expired identities and forged pass 2
//     all answer 401 "login_failed" with the same message, and a TriesLeft counted
//     for every idhash asked about (unknown ones in memory, bounded); pass 1 gets a
//     challenge made the same way for all of them. Pass 2 does the same work for all
//     of them (check): the same admission, one full check (pairing.ServerSession
//     Finish, or Reject where the login must fail anyway: both run the two pairings
//     and the key schedule whether the equation holds or not, so a blocked identity's
//     right PIN costs what a wrong one costs; under load the equation is checked in a
//     batch, where a login to refuse stands as a pair that never verifies, and
//     Conclude runs the key schedule whatever the batch said: see batcher) and one synced write of a failure record
//     of the same size — under the idhash for an enrolled identity, under one decoy
//     key for an unknown idhash, which does not grow the database (one that no other
//     write holds: stateStore.writeDecoy never waits behind another failure on a
//     shared decoy record). Neither the answers
//     nor their work tell these apart, nor whether an idhash is enrolled.
//   - Every failure is one atomic update of the stored record (read, counted and
//     written in one transaction of the state store) before the answer leaves, so no
//     count is lost by concurrency, a restart, or replicas sharing the store. At most
//     (tries left) verifications of one identity run at once in one process (the
//     others wait), so parallel guesses cannot test more PINs than the lockout allows.
//     A success resets the consecutive count; after MaxFailures in a row, even the
//     right PIN fails until the registrar unblocks the identity.
//   - The daily failure budget: failures are also counted per identity over a 24 h
//     window that starts at its first failure, and a success does not reset this
//     count. When it reaches MaxFailuresPerDay (default 10) the identity is held —
//     blocked until the registrar unblocks it, also after the window ends and across
//     restarts — the WARN line "daily login failure budget used up" names the idhash,
//     and polyroot_server_failure_budget_exceeded_total counts it.
//   - Metrics (per-request counts and timings) are not in Handler: MetricsHandler is
//     for the operations listener (internal/httpx), loopback by default.
//   - A channel binding mismatch (token and PIN right, TLS channels differ) answers
//     401 "channel_binding_mismatch" and is not counted as a failure.
//   - A login or renewal that asks for no channel binding ("unbound", a browser's) is
//     refused with 403 "unbound_refused" before anything is checked or counted when
//     Config.RefuseUnboundLogins is set, for domains whose clients all bind to TLS.
//   - A renewal is checked, counted and answered on failure exactly like a login (one
//     lockout for both; revoked, expired, blocked and unknown identities fail the
//     same way). Each session remembers its purpose: a login session never yields a
//     permit ticket and a renewal session never an access token or a session key for
//     SessionKey; a renewal's pass 1 (slot 0) is refused as a login, a login's
//     (slot ≠ 0) as a renewal. The two transcripts differ (the permit period is in
//     them), so one exchange's messages are no use in the other.
//   - Login sessions are single use, expire after SessionTTL (30 s) and are bounded in
//     number (the oldest go first). Enrolment codes are single use, even when their
//     redemption fails afterwards.
//   - Revocation takes effect here at once (before the DTAs are told), and is sent
//     to every DTA, which then refuse the identity's permits (in a threshold domain,
//     effective at the DTAs only once n−t+1 acknowledged it, so that no t DTAs can
//     still issue permits; the answer says how many did, and the others are retried
//     in the background until they have it or the server stops: revocation.go);
//     other server instances stop accepting it within one permit period plus Grace. Renewals do not weaken
//     this: an instance that does not know of the revocation still hands out a permit
//     ticket, but no DTA issues permits for it.
//   - The admin token is compared in constant time; access tokens are EdDSA only.
//   - Access-token revocation (tokens.go): a token revoked by its jti (POST
//     /v1/admin/tokens/revoke: any well-formed jti is recorded, known or not, until every
//     token with it has expired, then pruned with the codes) or with its identity (the
//     enrolment's Revoked time: every token of a revoked identity, whenever issued) is
//     inactive at once on every replica sharing the store: POST /v1/token/introspect
//     (RFC 7662) answers {"active": false} — the same for every reason a token is
//     inactive — and /v1/permits refuses it. Introspection needs its own bearer token
//     (Config.IntrospectionToken, compared in constant time; unset, the route answers
//     404 as an unknown path), so resource servers never hold the admin token. A
//     blocked identity's tokens stay active: anyone who knows an idhash can cause a
//     block, which says nothing against the logins that succeeded. Access tokens and
//     the introspection token never appear in logs, errors or metrics (a jti may).
//
// # Caveats
//
//   - With the bbolt store, one process per data directory (bbolt locks the file).
//     Replicas share the PostgreSQL store (Config.Store "postgres"): enrolments, codes,
//     failure counts, holds, revocations and login sessions are in the database, so
//     pass 1 on one replica and pass 2 on another works, a session is taken once, and
//     counts are exact. What a replica keeps in memory is a cache (the sessions it
//     made, and the login points A' by identity and slot: Config.LoginPointCache),
//     the pass-2 messages waiting for their batch, in-flight admissions (their slots,
//     which bound the verifications of one identity at once on all replicas together,
//     are in the database), the counts of unknown idhashes, the session keys of its
//     access tokens (below) and its per-address rate limits: an unknown idhash's tries
//     left differ between replicas, and an address may send N times the rate limit. A login session is stored as its state
//     (pairing.ServerSession.MarshalBinary, which holds the session's shared secret),
//     sealed with a key derived from the token key (sessionSealer): the replica that
//     gets pass 2 restores the session (Verifier.RestoreSession).
//   - Channel binding needs this process to terminate TLS: behind a TLS-terminating
//     proxy the server sees no TLS, its binding is empty, and clients that bind to
//     their TLS channel fail with channel_binding_mismatch (as they should: the proxy
//     is a man in the middle as far as the protocol can tell).
//   - Revoking by app-level ID revokes every enrolment of that ID (each device it
//     enrolled); to revoke one of them, revoke it by idhash.
//   - With PostgreSQL, login sessions expire by the clock of the replica that made
//     them (checked at pass 2 by the replica that takes them): replicas' clocks must
//     agree within the session lifetime (30 s); expired rows are pruned five minutes
//     after, by the database's clock. The server warns at start when the database
//     commits asynchronously (synchronous_commit = off), which a crash of the database
//     could make lose acknowledged failure counts.
//   - The failure counts of unknown idhashes live in memory only, per replica (their
//     writes go to one of 256 decoy records) and are forgotten at a restart or when
//     more than 100,000 of them are kept: who saw both a restart (or two replicas) and
//     the tries left of an idhash it had failed on before could tell an unknown idhash
//     from an enrolled one. Nor does a success ever reset an unknown idhash's count:
//     tries left of 2 then 2, with a wait between two failures, tell an enrolled
//     identity whose owner logged in meanwhile (2 then 1: unknown, or no login).
//   - Blocks are failure counts at or above MaxFailures, or a hold by the daily
//     budget: changing MaxFailures changes who is blocked by the first kind.
//   - Equal work is not equal time to the microsecond: an enrolled identity's lookup
//     decodes its record, and gnark-crypto's pairing is not constant-time (SECURITY.md).
//   - Under load, pass 2 waits up to Config.LoginBatchWindow (10 ms by default) for
//     others to be checked with it in one batch (batcher); an idle server checks it at
//     once, and while failures are frequent every pass 2 is checked alone. A batch
//     with failures is halved (pairing.VerifyBatch, at most n + 2·bits(n) checks for n
//     pass 2): its honest logins wait for those checks.
//   - Session keys for proof of possession (SessionKey) are kept in memory only, by
//     access-token ID, until the token expires; a restart forgets them.
//   - A revoked access token is refused where this server is asked (introspection,
//     permits); an app backend that checks tokens offline with server/middleware's New
//     accepts it until it expires (TokenTTL), one with its Introspector within the
//     Introspector's cache time. A jti revocation is kept for max(TokenTTL, 24 h): a
//     replica configured with a longer TokenTTL than that issues tokens that can outlive
//     it. The introspection route is rate limited per address like every API route: a
//     busy resource server needs the Introspector's cache (or a higher limit).
//   - Go cannot reliably erase memory: secrets live until the garbage collector reuses
//     it.
package server
