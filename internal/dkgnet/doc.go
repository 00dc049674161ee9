// Package dkgnet runs a domain's distributed key generation (package dkg) among its
// DTAs over HTTP: it moves the signed dkg messages between the members, gives every
// member the same set of messages, and completes only when every member has confirmed
// the same transcript.
//
// # The ceremony
//
// The registrar writes a SessionFile: domain, epoch, a fresh nonce, the threshold t,
// and for each member its index, its Ed25519 public key (from its DTA record) and the
// URL of its board. Each member serves a Board (an http.Handler) at that URL and calls
// Run. A Board holds what the parties post to that member; Run plays the rounds:
//
//  1. Hello. Each party makes a fresh X25519 seal key (wire.NewSealKey) and posts a
//     notice signed with its Ed25519 key over the SHA-256 of the session file and the
//     seal key. With every party's hello, everyone builds the same dkg.Session (the
//     seal keys become part of its ID). A party whose hello is missing by the deadline
//     aborts the run, named; two different hellos of one party abort it too.
//  2. The dkg rounds (deal, complaint, answer, feldman, disclose, reveal; deal,
//     complaint, answer in a resharing). Each party computes its message from every
//     message so far (it may have none), posts it to every board, its own included,
//     and to each board once that board took it a signed "done" notice for the
//     round. Answers 502, 503, 504, 429, not_ready and connection errors are retried
//     until the round's deadline; a party whose post a board refuses (any other
//     answer but 2xx), or has not taken by the deadline, aborts the run naming that
//     board, so no round closes without a party's own message while it goes on (a
//     lost complaint or deal would otherwise strand or exclude an honest party).
//     When its own board holds every party's done notice, it closes the round
//     there: the board takes no more posts for it and starts serving it. Then it
//     echoes: it reads the round from every other board (a read waits until that
//     board's round is closed) and takes the union of the messages that pass dkg's
//     checks. A message a sender gave only to some boards thus reaches everyone, and
//     every party that reads every board evaluates the same set. A missing done
//     notice by the deadline aborts the run, naming the party.
//  3. Confirm. After dkg's Finish each party posts a notice signed over the session ID
//     and the SHA-256 of the transcript's JSON (TranscriptHash). The run completes only
//     when its own board holds every party's confirmation of that same hash; otherwise
//     it aborts, naming the parties that did not confirm or confirmed another hash.
//     (This round has no echo, so a party may stop serving its board once it
//     completes.)
//
// Only a completed run returns the share; the caller stores it then, and only then. So
// a ceremony aborts or completes, and never leaves shares that do not combine: a party
// that crashes before confirming makes everyone abort; one that crashes after
// confirming has lost only its own share, which t others still cover (rerun a
// resharing to give it a new one). The Transcript (dkg.Transcript plus the
// confirmations) is public; Verify recomputes the result and checks every
// confirmation. Publish it beside the trust bundle.
//
// # Routes
//
//	POST /dkg/v1/messages        a dkg message (dkg.DecodeMessage's encoding)
//	POST /dkg/v1/notices         a hello, done or confirm notice (169 bytes)
//	GET  /dkg/v1/rounds/{round}  every item held for hello, deal … reveal or confirm,
//	                             once the round is closed: u32 length ‖ item, repeated
//
// Bodies are application/octet-stream. Errors are httpx JSON {code, message} with a
// 4xx status: not_ready (409: the member has not fixed the session yet; retry),
// wrong_session, bad_message, bad_notice, rejected (403: not a party, or a bad
// signature), round_closed, equivocation_held, body_too_large, round_open (503).
//
// # Security invariants
//
//   - A board stores only what a party of the session signed for it: a dkg message
//     passes dkg.Session.DecodeAccepted (session ID, a sender allowed to send its
//     kind and its Ed25519 signature, checked on the encoding before any point is
//     decoded; then dkg.DecodeMessage, strict); a notice names a party and carries
//     its signature over the session file's hash (hello) or the session ID.
//   - Bodies are bounded (http.MaxBytesReader) by the largest message the session's
//     size allows; answers read from other boards are bounded likewise. Nothing the
//     network sends can panic the handler (FuzzBoardPost).
//   - Equivocation reaches the core as evidence: a board keeps a sender's first
//     message of a kind and one different second; the echo keeps the two lowest
//     encodings per sender, so every party files the same pair.
//   - Shares travel only inside dkg's HPKE boxes, sealed to a seal key made for this
//     run and erased when Run returns, as are the participant's polynomials. Run logs
//     round names, counts and party names, never a share or a key.
//   - Nobody stores a share unless every party confirmed the same transcript.
//   - Run never follows a redirect (not even with a Config.HTTPClient that would): a
//     board's 3xx is a refusal, so no board can send the others' requests elsewhere.
//
// # Caveats
//
//   - Any party can make a ceremony abort by not confirming, by confirming another
//     hash, or by going silent: completion needs all n parties. Rerun the ceremony
//     without that DTA (a new session file). Aborts are not propagated: the others
//     learn of one at the next deadline.
//   - Every party can compute the public key before it confirms. A party that aborts
//     after seeing a key it does not like, and takes part in the rerun, draws the key
//     again: it biases the key by as many draws as it is allowed reruns. So a DTA
//     that did not confirm is left out of the rerun, not given another try. It can
//     also send its confirmation to some boards only: those parties complete (a
//     stored share, or a pending one in a resharing) and the others abort. Assemble
//     no bundle from such a run; rerun without that DTA.
//   - The echo gives agreement only if every party can read every board. A party that
//     cannot read some board may end with another set of messages; the confirmation
//     then fails and the ceremony aborts, safely but without naming the cause.
//   - Plain HTTP is acceptable for confidentiality (everything is signed, shares are
//     sealed), but not for availability: anyone on the path can drop messages and so
//     abort the ceremony. Serve the boards behind TLS where that matters.
//   - The boards take unauthenticated GETs: everything they serve is in the public
//     transcript anyway. A GET of an open round waits up to 10 s for it to close, but
//     at most 2n+32 at once (n parties); more are answered round_open at once and
//     the reader retries. There is no rate limiting: run a board only for the
//     ceremony, with an http.Server whose read and idle timeouts are set.
//   - Rounds are synchronised by deadlines (Config.StartTimeout for the hello round,
//     then Config.RoundTimeout per round and per echo): a party slower than the
//     deadline is treated as absent.
//   - A party that confirmed and then crashed before storing its share, or could not
//     gather every confirmation when others could, stores nothing while the others
//     complete: their shares stay valid (any t of them), and a resharing gives it a
//     new one.
package dkgnet
