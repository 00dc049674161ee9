// Package client is the polyroot library that apps and IoT devices embed to enrol an
// identity with a domain's trust authorities (DTAs) and log in to the domain's auth
// server with M-Pin Full mutual authentication. The polyroot client
// CLI is a thin layer over it.
//
// A client lives in one directory (e.g. ~/.config/polyroot/<domain>), or in any
// Storage (OpenStorage, BootstrapStorage: e.g. a browser's IndexedDB, for the
// WebAssembly build in internal/wasmclient, which sends its requests with the
// browser's fetch instead of net/http):
//
//   - Bootstrap pins the domain's trust bundle by its SHA-256 fingerprint
//     (bundle.json and bundle.sha256).
//   - Enroll redeems a one-time code at the auth server, fetches the client key
//     shares and time permits from every DTA in parallel, checks and combines them,
//     takes the PIN out and writes token.json. In a threshold domain (t of n DTAs,
//     the bundle's mode and threshold) the first t valid shares of each slot are
//     combined by Lagrange interpolation at 0 and the requests still running are
//     cancelled; DTAs that failed meanwhile are reported to WithDTAFaults.
//   - Login proves token, PIN and current permit to the server, checks that the
//     server holds the domain's key sQ and that it saw the same TLS channel, and
//     returns the access token and a session key.
//   - RefreshPermits fetches time permits for the coming periods with an access token
//     from Login. RenewPermits does the same without one, with the PIN: a renewal
//     is the same mutual login without a permit (A' = A), after which the server
//     answers with a permit ticket instead of an access token; it is how a client
//     whose permits have all expired (Login fails with ErrPermitExpired) gets new
//     ones. Status reports.
//   - After the DTAs reshare the master key (new commitments, the same s), the
//     registrar publishes a successor bundle with a greater serial. The client
//     adopts it from the auth server's /v1/bundle when it fetches permits (at most
//     once per BundleCheckInterval), when a DTA's share fails its proof against the
//     pinned commitments (then it retries once), and at enrolment when the registrar
//     names another bundle — only if it is signed with the pinned registrar key and
//     keeps domain, registrar, permit period and master public key s·P1
//     (bundle.CheckSuccessor); otherwise ErrBundleNotSuccessor and nothing changes.
//     bundle.json, bundle.sha256 and token.json then name the successor
//     (BundlePreviousFile journals the change; Open finishes one a crash interrupted).
//
// # Security invariants
//
//   - The client never stores sA, the PIN or anything computed from the PIN:
//     token.json holds the token TK = sA − π·A, the combined permits s·T_k, the
//     identity and the DTAs' receipts. A stolen token file does not allow offline
//     PIN guessing; each guess costs an online login, and the server blocks the
//     identity after a few.
//   - token.json is written atomically (temporary file, fsync, rename, directory
//     fsync) with mode 0600, and refused at load when group or others can read it.
//     Another Storage must keep it as private (Storage documents what it must do).
//   - Every share is checked before it is combined: its DLEQ proof against the DTA's
//     commitment in the pinned bundle, under the context (domain, DTA, kind, slot);
//     its log entry, which must describe exactly this issuance (DTA, domain, kind,
//     subject hash of the idhash, slot, sealed-share hash, ticket hash); and the DTA's signed promise for that
//     entry. A DTA whose answer fails is named (BadShareError), and nothing is stored;
//     in threshold mode, nothing is stored unless t DTAs answered validly
//     (QuorumError names every DTA that failed, and why), and t−1 DTAs' shares alone
//     never make a key.
//   - The pinned bundle's fingerprint and signature are checked again on every Open.
//   - A login succeeds only when the server's key confirmation verifies (only a holder
//     of sQ can make it) and, over TLS, the server's transcript carries the same
//     RFC 9266 tls-exporter binding as the client's: a TLS-intercepting proxy, even
//     one with a trusted certificate, makes the login fail with
//     ErrPossibleInterception.
//   - A renewal (RenewPermits) checks the server's key confirmation and the channel
//     binding exactly like Login, before it uses the permit ticket in the answer; the
//     permit shares are then checked like every share. Its wrong PINs count toward the
//     same lockout as logins'.
//
// # Errors
//
// Every error a caller acts on is one of a short list, each with its remedy in the
// message: ErrWrongPIN (*WrongPINError with the tries left), ErrBlocked, ErrRevoked,
// ErrPermitExpired, *DTAUnreachableError, *BadShareError (inside a *QuorumError in
// threshold mode, with the other DTAs' failures), ErrServerNotAuthentic,
// ErrPossibleInterception, ErrBundleFingerprint, ErrBundleNotSuccessor, plus ErrNotEnrolled,
// ErrIdentityExpired, ErrTokenFileMode and *APIError for other refusals. Renewals
// (RenewPermits) fail with the same kinds as logins.
//
// # Caveats
//
//   - ErrRevoked is best effort: the server answers a revoked identity's login and
//     renewal like a wrong PIN; the client learns of a revocation only when a DTA
//     (or the server, for RefreshPermits) refuses permits.
//   - In additive mode enrolment and permits need every DTA: a faulty DTA is reported
//     rather than tolerated. In threshold mode any t suffice, and a faulty one is
//     only reported (WithDTAFaults); one whose answer came after t valid ones is not
//     checked at all.
//   - Without TLS (WithInsecureHTTP) there is no channel binding: an active attacker
//     can relay a login and take the access token, though never the PIN. The same
//     holds WithoutChannelBinding (a browser page, which cannot see its TLS
//     connection): the server's key confirmation is still checked, but an
//     interceptor with a certificate the client trusts is not detected. The server
//     marks such a login by leaving "tls-cb" out of the access token's amr.
//   - No request to the auth server follows a redirect (ErrRedirect): one from https
//     to http would take a login off its channel. Point the client at the server's own
//     URL, not at one that redirects to it.
//   - A login whose connection closes between the passes is retried once; a
//     transport that is not an *http.Transport cannot be limited to one connection,
//     and its logins may fail with ErrPossibleInterception if it switches connections.
//   - Go cannot reliably erase memory: the PIN and keys live until the garbage
//     collector reuses their memory. Devices should keep the directory in protected
//     storage; the token alone is a device's key.
//   - Receipts are stored for a later audit against the DTAs' logs; this package does
//     not yet fetch inclusion proofs. The enrolment's are kept, and of the permits'
//     the newest, 2,048 receipts in all (about 2 MB): the DTAs' logs keep the rest.
//     After a successor bundle is adopted, the receipts of a DTA it no longer lists
//     are kept but cannot be matched to a DTA of the pinned bundle.
//   - A successor is adopted in one process at a time per directory only by the
//     checks in adopt (the pinned file must be unchanged on disk); the directory has
//     no lock across processes.
package client
