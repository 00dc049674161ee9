// Package pairing is polyroot's protocol core: BLS12-381 arithmetic, shared keys
// issued by several Distributed Trust Authorities (DTAs), and the M-Pin Full mutual
// login. docs/protocol.md specifies every byte; this package is the reference.
//
// # The idea
//
// A domain (one backend) has n DTAs. DTA i holds a master share s_i and publishes
// C_i = s_i·P1. The domain key s is their sum (Additive mode) or the value at 0 of their
// Shamir polynomial (Threshold mode); nobody holds it.
//
//   - A client with identity hash idhash gets S_i = s_i·A from each DTA, where
//     A = H1(idhash), checks each share's DLEQ proof (IssueShare, VerifyShares) and
//     combines them (Combine) into its client key s·A. It keeps only the token
//     TK = s·A − π·A, where π hashes the PIN (ExtractPIN).
//   - Time permits s·T_k for slot k come the same way; a revoked identity gets none.
//   - The server gets s_i·Q from each DTA, checks it (VerifyServerShare), combines sQ and
//     keeps it as a ServerKey.
//   - Login (Client.Start, Verifier.Challenge, ClientSession.Respond,
//     ServerSession.Finish, ClientSession.Finish) proves to the server that the client
//     holds token and PIN, proves to the client that the server holds sQ, and gives
//     both the same session key, bound to the channel (TLS exporter) they used.
//
// # Security invariants
//
//   - Every computation with a secret (master share, PIN, token, client key, nonces x,
//     r, w, DLEQ nonces, combining sQ) uses circl's constant-time code: Scalar
//     arithmetic, HashToScalar, RandomScalar, and the Mul, Add, Sub, Neg methods of G1
//     and G2. gnark-crypto's faster, not constant-time code sees public values, plus
//     these secret values: a received share when it is decoded and its proof checked
//     (once, at enrolment or provisioning), and sQ, whose precomputed lines enter every
//     verifier pairing. SECURITY.md lists the consequences.
//   - Every decoder (DecodeScalar, DecodeG1, DecodeG2, DecodeDLEQProof and the
//     messages' UnmarshalBinary) rejects wrong lengths, non-canonical encodings, points
//     off the curve or outside the subgroup, the identity point and zero scalars, with
//     errors that errors.Is matches against ErrLength, ErrEncoding, ErrSubgroup,
//     ErrIdentity and ErrZeroScalar.
//   - The verifier refuses identity points explicitly: gnark-crypto's pairing treats
//     the identity as neutral, so V = U + y·A' = identity would pass a bare check.
//   - A ServerSession and a ClientSession can each be used once.
//   - Nothing in this package logs, and no error message contains a secret.
//
// # Caveats
//
//   - The package does not keep state across logins: the caller stores server sessions
//     by ID, drops them after 30 s, counts failures per identity and rate-limits.
//   - Wrong PIN, wrong token, unknown identity and forged messages all give
//     ErrAuthFailed; callers must not reveal more to the client.
//   - Go cannot reliably erase memory; secrets live until the garbage collector reuses
//     their memory.
//   - Built for WebAssembly (GOOS=js, the browser client), the package has the client's
//     side only, and no gnark-crypto: every point is circl's, decoded and checked by
//     circl in constant time (point_js.go). The server's side (ServerKey, Verifier,
//     ServerSession, VerifyBatch, LoginPoints, VerifyServerShare) is not built there.
//   - All DTAs together can compute any client key (key escrow, as in Milagro); the
//     issuance log is what makes that visible.
package pairing
