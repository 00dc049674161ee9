package wire

import "time"

// The auth server's HTTP API (server/routes.go has the route table). Bodies are JSON;
// []byte fields are standard base64, as encoding/json writes them. Errors are JSON
// {code, message} (internal/httpx) with the stable codes listed at each route.
//
// Admin routes need "Authorization: Bearer <admin token>" (the token from the server's
// configuration); a missing or wrong token answers 401 "unauthorized".
//
//	POST /v1/admin/enrolments   EnrolmentRequest  → EnrolmentCreated
//	GET  /v1/admin/enrolments   ?id=&after=&limit= → EnrolmentList     (400 "bad_request")
//	POST /v1/admin/revoke       IdentityRequest   → RevokeResult       (404 "unknown_identity")
//	POST /v1/admin/unblock      IdentityRequest   → UnblockResult      (404 "unknown_identity")
//	POST /v1/admin/tokens/revoke TokenRevokeRequest → TokenRevokeResult (400 "bad_request": jti malformed)
//
// An IdentityRequest by ID names every enrolment of that ID (one per device it enrolled);
// by idhash, that one enrolment.
//
// Public routes:
//
//	GET  /v1/bundle             the trust bundle file, byte for byte (clients check its fingerprint)
//	POST /v1/enrol              RedeemRequest     → EnrolPackage       (404 "unknown_code": unknown, used or expired)
//	POST /v1/login/start        StartRequest      → StartResponse      (400 "bad_request": pass 1 malformed, an
//	                                                                     unknown purpose, a renewal's slot not 0,
//	                                                                     days out of range; 400 "no_permits": a
//	                                                                     renewal in a domain without permits;
//	                                                                     409 "permit_slot": not the current slot;
//	                                                                     409 "wrong_domain": another domain's server)
//	POST /v1/login/finish       FinishRequest     → FinishResponse     (401 "login_failed" with TriesLeft,
//	                                                                     401 "channel_binding_mismatch",
//	                                                                     400 "bad_request": pass 2 malformed,
//	                                                                     404 "unknown_session": expired or used)
//	POST /v1/permits            PermitRequest     → PermitTicket       (needs "Authorization: Bearer <access token>";
//	                                                                     401 "invalid_token", 403 "identity_not_allowed":
//	                                                                     revoked or expired, 400 "no_permits": the
//	                                                                     domain has no permits, 400 "bad_request")
//	POST /v1/token/introspect   IntrospectionRequest (JSON, or RFC 7662's form) → Introspection
//	                                                                    (needs "Authorization: Bearer <introspection
//	                                                                     token>", 401 "unauthorized"; 404 "not_found"
//	                                                                     while the server has none configured)
//	GET  /.well-known/jwks.json the access-token keys (RFC 7517)
//	GET  /v1/openapi.yaml       this list in full, as OpenAPI 3.1 (server/openapi.yaml)
//	GET  /livez, /readyz
//
// The Prometheus metrics are not on this API: the server serves GET /metrics on a
// separate operations listener (loopback by default), for operators only.
//
// Every route may also answer 400 "bad_json", 413 "body_too_large", 415
// "unsupported_media_type" (bodies must be application/json), 429 "rate_limited" with
// Retry-After, and 500 "internal".
//
// Login failures — wrong PIN, unknown, revoked, blocked or expired identity, forged
// message — all answer 401 "login_failed" with the same message and a TriesLeft that
// the server counts for every idhash it is asked about, known or not; after MaxFailures
// (default 3) failures in a row, or MaxFailuresPerDay (default 10) within 24 h whatever
// the successes in between, TriesLeft is 0 until the registrar unblocks the identity.
// They all cost the server the same work, so their timing tells them apart no more.
//
// Permit renewal. A client whose permits have all expired cannot log in, so it cannot
// get the access token that POST /v1/permits needs. It renews instead: the same two
// passes with StartRequest.Purpose "renew", but without a permit in them (A' = A: pass 1
// is made with pairing.Domain{Name, PermitPeriod: 0}, no permit and slot 0, and the
// server verifies it with the same sQ and that domain). The session remembers its
// purpose. A renewal's pass 2 is checked, counted and refused exactly like a login's
// (same answers, same lockout; revoked, expired, blocked and unknown identities fail
// the same way), and a successful one answers FinishResponse with Finish (the server's
// tag, which the client must check before it uses anything else in the answer), ID,
// and Permit, a permit ticket for StartRequest.Days periods from the current one, and
// no access token. A login session never yields a permit ticket, a renewal session
// never an access token. The DTAs still refuse permits to revoked identities.

// EnrolmentRequest asks the registrar to enrol an app-level identity.
type EnrolmentRequest struct {
	ID string `json:"id"` // the app-level identity: an e-mail, a device serial
	// Device marks an IoT device that logs in without a PIN.
	Device bool `json:"device,omitempty"`
	// TTL, if set, makes a temporary identity that the server refuses after it (seconds).
	TTL int64 `json:"ttl_seconds,omitempty"`
	// PermitDays is how many permit periods ahead the client may fetch (default 7).
	PermitDays int `json:"permit_days,omitempty"`
}

// EnrolmentCreated is the registrar's answer: a one-time code to hand to the client.
type EnrolmentCreated struct {
	Code      string    `json:"code"`       // single use, short-lived (default 24 h)
	IDHash    string    `json:"idhash"`     // hex
	ExpiresAt time.Time `json:"expires_at"` // of the code (at the latest the identity's NotAfter)
	// NotAfter is when a temporary identity (ttl_seconds) expires; nil for a permanent one.
	NotAfter *time.Time `json:"not_after,omitempty"`
	// OtherActive counts the ID's other enrolments that can still log in (or are
	// still to be redeemed): an app adding a device is normal, and the registrar sees it.
	OtherActive int `json:"other_active"`
}

// Enrolment states in EnrolmentInfo.State.
const (
	StatePending = "pending" // its code not redeemed yet
	StateActive  = "active"
	StateBlocked = "blocked" // too many failures: the registrar's unblock lifts it
	StateRevoked = "revoked"
	StateExpired = "expired" // a temporary identity past its ttl
)

// EnrolmentInfo is the registrar's view of one enrolment.
type EnrolmentInfo struct {
	ID          string     `json:"id"`
	IDHash      string     `json:"idhash"`
	State       string     `json:"state"` // one of the State constants; revoked and expired win over blocked
	Device      bool       `json:"device"`
	Created     time.Time  `json:"created"`
	NotAfter    *time.Time `json:"not_after,omitempty"` // temporary identities
	Revoked     *time.Time `json:"revoked,omitempty"`
	PermitDays  int        `json:"permit_days"`
	Failures    int        `json:"failures"`     // consecutive failed logins
	DayFailures int        `json:"day_failures"` // failed logins in the current 24 h window
}

// EnrolmentList is a page of enrolments in idhash order; Next, when set, is the
// after= of the next page.
type EnrolmentList struct {
	Enrolments []EnrolmentInfo `json:"enrolments"`
	Next       string          `json:"next,omitempty"`
}

// IdentityRequest names an identity by its app-level ID or by its idhash (hex).
type IdentityRequest struct {
	ID     string `json:"id,omitempty"`
	IDHash string `json:"idhash,omitempty"`
}

// RevokeResult reports a revocation: effective on this server at once, and sent to
// every DTA (which then refuse permits); DTAs that could not be reached are listed.
type RevokeResult struct {
	IDHashes []string `json:"idhashes"` // every enrolment revoked (by ID: all of the ID's)
	// AlreadyRevoked counts those of IDHashes that were revoked before this request
	// (their revocation is sent to the DTAs again).
	AlreadyRevoked int      `json:"already_revoked,omitempty"`
	Unreachable    []uint32 `json:"unreachable_dtas,omitempty"`
	// DTAQuorum is set in threshold domains only.
	DTAQuorum *RevokeQuorum `json:"dta_quorum,omitempty"`
}

// RevokeQuorum says whether a revocation in a threshold domain (t of n DTAs) stops
// the issuing of permits: only once n−t+1 DTAs acknowledged it are there no t DTAs
// left that would issue them. The registrar retries the DTAs that did not acknowledge
// in the background (Retrying; the server's gauge
// polyroot_server_revocation_notices_pending counts the notices owed).
type RevokeQuorum struct {
	Acknowledged int      `json:"acknowledged"` // DTAs that acknowledged every notice
	Needed       int      `json:"needed"`       // n−t+1
	Effective    bool     `json:"effective"`    // Acknowledged ≥ Needed
	Retrying     []uint32 `json:"retrying_dtas,omitempty"`
}

// UnblockResult lists the enrolments whose failure counts were reset, and those of
// them that were blocked (no tries left) until then.
type UnblockResult struct {
	IDHashes []string `json:"idhashes"`
	Blocked  []string `json:"blocked"`
}

// RedeemRequest redeems an enrolment code without sending it (see NewRedeemRequest):
// the registrar finds the code by CodeID, checks Proof with the code's key, and signs
// a client ticket that names ClientKey and permit tickets that name PermitKey
// (ClientKey when it is absent), so that every DTA seals the client's shares to the
// one and its permits to the other. Two keys, so that the client can erase the one
// that opens its client shares once it has them: the key it keeps to open permits
// then opens nothing that, with its token, would let anyone test PINs offline.
type RedeemRequest struct {
	CodeID    []byte `json:"code_id"`              // 32 bytes: CodeSecrets(code) id
	ClientKey []byte `json:"client_key"`           // 32 bytes: the X25519 key of the client shares
	PermitKey []byte `json:"permit_key,omitempty"` // 32 bytes: the X25519 key of the permits; not ClientKey
	Proof     []byte `json:"proof"`                // 32 bytes: CodeProof(key, domain, ClientKey, PermitKey)
}

// EnrolPackage is what a client needs to collect its shares from the DTAs.
type EnrolPackage struct {
	Domain       string     `json:"domain"`
	ID           string     `json:"id"`
	Salt         []byte     `json:"salt"`   // 16 bytes: idhash = pairing.NewIDHash(domain, id, salt)
	IDHash       string     `json:"idhash"` // hex, for the client to check
	Device       bool       `json:"device,omitempty"`
	NotAfter     *time.Time `json:"not_after,omitempty"` // temporary identities
	ClientTicket string     `json:"client_ticket"`       // for POST /v1/shares/client at every DTA
	PermitTicket string     `json:"permit_ticket"`       // for POST /v1/shares/permit, slots FirstSlot..LastSlot
	FirstSlot    uint64     `json:"first_slot"`
	LastSlot     uint64     `json:"last_slot"`
	// BundleFingerprint names the trust bundle the registrar works under (GET /v1/bundle
	// serves it); the client refuses to enrol unless it is the bundle it pinned.
	BundleFingerprint string `json:"bundle_fingerprint"`
	// MAC is PackageMAC of this answer under the code's key, for the client key of the
	// request: the client refuses an answer without it, or one made for another code.
	MAC []byte `json:"mac"`
}

// Purposes of a login exchange (StartRequest.Purpose).
const (
	PurposeLogin = "login" // or "": a login that gets an access token
	PurposeRenew = "renew" // a permit renewal that gets a permit ticket
)

// StartRequest carries pass 1 (pairing.Pass1, binary encoding).
type StartRequest struct {
	Pass1 []byte `json:"pass1"`
	// Purpose is "" or PurposeLogin for a login, PurposeRenew for a permit renewal,
	// whose pass 1 is made without a permit (A' = A) and has slot 0.
	Purpose string `json:"purpose,omitempty"`
	// Days is, for a renewal only, how many permit periods from the current one the
	// permit ticket covers (0 to 30; 0, or more than the enrolment's PermitDays, gives
	// PermitDays).
	Days int `json:"days,omitempty"`
	// Domain, if set, is the domain the client is enrolled with: a server of another
	// domain answers 409 "wrong_domain" naming its own, before any check is made or
	// counted, so that a client pointed at the wrong server says so.
	Domain string `json:"domain,omitempty"`
	// Unbound asks for a login without channel binding: the server then uses an empty
	// binding cb in the transcript (as without TLS) instead of its connection's
	// tls-exporter value. A browser page cannot read the exporter, so it sets this;
	// native clients never do. The access token of such a login lacks the "tls-cb"
	// method in its amr claim, and relying parties that need channel binding refuse it.
	// An interceptor that sets it on a native client's pass 1 gains nothing: the
	// client's transcript keeps its own binding, so the tags differ and the client
	// reports the interception.
	Unbound bool `json:"unbound,omitempty"`
}

// StartResponse carries the challenge (pairing.Challenge, binary encoding); the
// session it names lives 30 s and can be finished once. Every well-formed pass 1 for
// an acceptable slot gets a challenge, whoever the identity is: unknown, revoked,
// blocked and expired identities fail at pass 2, like a wrong PIN.
type StartResponse struct {
	Challenge []byte `json:"challenge"`
}

// FinishRequest carries pass 2 (pairing.Pass2, binary encoding). Over TLS, the
// transcript includes the RFC 9266 tls-exporter channel binding of the connection
// that carries this request.
type FinishRequest struct {
	Pass2 []byte `json:"pass2"`
	// AuthRequest, set by the login page of the auth server's OpenID Provider, is the
	// ID of the auth request this login is for (its authRequestID). The access token
	// of the login then names it (claim "auth_request"), and only such a token
	// completes that auth request: a token issued to an app, or for another auth
	// request, completes none. At most 64 characters of [0-9A-Za-z_-].
	AuthRequest string `json:"auth_request,omitempty"`
}

// FinishResponse is a successful login or renewal. A login carries AccessToken and
// ExpiresAt (of the token) and no Permit; a renewal carries Permit and no access token.
type FinishResponse struct {
	Finish      []byte        `json:"finish"` // pairing.Finish: the server's tag, proof it holds sQ
	ID          string        `json:"id"`     // the app-level identity logged in
	AccessToken string        `json:"access_token,omitempty"`
	ExpiresAt   time.Time     `json:"expires_at,omitzero"`
	Permit      *PermitTicket `json:"permit,omitempty"` // renewals only
}

// LoginFailure is the body of a 401 "login_failed".
type LoginFailure struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	TriesLeft int    `json:"tries_left"`
}

// PermitRequest asks for a permit ticket for the next Days permit periods, from the
// current one (0 to 30; 0, or more than the enrolment's PermitDays, gives PermitDays).
type PermitRequest struct {
	Days int `json:"days"`
}

// PermitTicket is a registrar-signed permit ticket for the caller's identity.
type PermitTicket struct {
	Ticket    string `json:"ticket"`
	FirstSlot uint64 `json:"first_slot"`
	LastSlot  uint64 `json:"last_slot"`
}

// TokenRevokeRequest revokes one access token by its ID (the jti claim). Any jti of 1
// to 128 visible ASCII characters is recorded, issued by this server or not: the answer
// tells nothing about which tokens exist.
type TokenRevokeRequest struct {
	JTI string `json:"jti"`
}

// TokenRevokeResult reports a token revocation: every replica of the server refuses the
// token from now on; the record is kept until RevokedUntil, when every token with
// that jti has expired.
type TokenRevokeResult struct {
	JTI          string    `json:"jti"`
	RevokedUntil time.Time `json:"revoked_until"`
}

// IntrospectionRequest is an RFC 7662 token introspection request: the access token
// to check. TokenTypeHint is accepted and ignored (the server has one kind of token).
// The server also takes it as an application/x-www-form-urlencoded body (token=…), as
// RFC 7662 sends it.
type IntrospectionRequest struct {
	Token         string `json:"token"`
	TokenTypeHint string `json:"token_type_hint,omitempty"`
}

// Introspection is the answer to an IntrospectionRequest (RFC 7662 section 2.2). An
// inactive token — malformed, not signed by this server, expired, revoked by its jti,
// or of an identity that is revoked, expired or unknown — gets Active false and no
// other field, whatever the reason. An active one gets its claims: Sub the app-level
// identity, Exp and Iat in Unix seconds, JTI its ID, IDHash its identity hash (hex).
type Introspection struct {
	Active bool   `json:"active"`
	Sub    string `json:"sub,omitempty"`
	Exp    int64  `json:"exp,omitempty"`
	Iat    int64  `json:"iat,omitempty"`
	JTI    string `json:"jti,omitempty"`
	IDHash string `json:"idhash,omitempty"`
}
