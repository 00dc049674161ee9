package server

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
	"github.com/polyroot/polyroot/server/middleware"
)

// Defaults and bounds of the registrar.
const (
	defaultPermitDays = 7
	maxPermitDays     = 30
	maxIDLength       = 256
	// maxTTLSeconds bounds a temporary identity's ttl_seconds: ten years (of 365 days).
	// Far beyond any temporary use, and far from overflowing a time.Duration.
	maxTTLSeconds = 10 * 365 * 24 * 3600
)

var (
	errUnknownIdentity = httpx.Errorf(http.StatusNotFound, "unknown_identity", "no such identity")
	errUnknownCode     = httpx.Errorf(http.StatusNotFound, "unknown_code", "unknown, used or expired enrolment code")
	errCodeProofFailed = httpx.Errorf(http.StatusForbidden, "code_proof_failed",
		"the proof of the enrolment code does not match the key sent with it: the request was altered on its way (possible interception); the code is still valid")
	errNoClientKey = httpx.Errorf(http.StatusConflict, "reenrol", "this enrolment predates sealed shares: enrol the identity again")
	errNoPermits   = httpx.Errorf(http.StatusBadRequest, "no_permits", "this domain does not use time permits")
	errNotAllowed  = httpx.Errorf(http.StatusForbidden, "identity_not_allowed", "this identity is revoked or expired")
	errBadToken    = httpx.Errorf(http.StatusUnauthorized, "invalid_token", "send a valid access token: Authorization: Bearer <token>")
)

// newCode returns a 20-character base32 code: 100 random bits.
func newCode() (string, error) {
	var b [13]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])[:20], nil
}

func (s *Server) handleCreateEnrolment(w http.ResponseWriter, r *http.Request) {
	resp, err := s.createEnrolment(w, r)
	s.adminResult("enrol", err)
	if err != nil {
		httpx.WriteError(w, r, s.cfg.Logger, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, resp)
}

func (s *Server) adminResult(action string, err error) {
	result := "ok"
	var he *httpx.Error
	if errors.As(err, &he) {
		result = he.Code
	} else if err != nil {
		result = "internal"
	}
	s.metrics.admin.WithLabelValues(action, result).Inc()
}

func (s *Server) createEnrolment(w http.ResponseWriter, r *http.Request) (*wire.EnrolmentCreated, error) {
	var req wire.EnrolmentRequest
	if err := httpx.DecodeJSON(w, r, httpx.MaxBody, &req); err != nil {
		return nil, err
	}
	switch {
	case req.ID == "" || len(req.ID) > maxIDLength || !utf8.ValidString(req.ID) || strings.ContainsFunc(req.ID, unicode.IsControl):
		return nil, httpx.Errorf(http.StatusBadRequest, "bad_request", "id must be 1 to %d bytes of UTF-8, without control characters", maxIDLength)
	case req.TTL < 0 || req.TTL > maxTTLSeconds:
		return nil, httpx.Errorf(http.StatusBadRequest, "bad_request",
			"ttl_seconds must be 0 (a permanent identity) to %d (ten years)", maxTTLSeconds)
	case req.PermitDays < 0 || req.PermitDays > maxPermitDays:
		return nil, httpx.Errorf(http.StatusBadRequest, "bad_request", "permit_days must be 0 to %d", maxPermitDays)
	}
	now := s.cfg.Now()
	salt := make([]byte, pairing.SaltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	id, err := pairing.NewIDHash(s.domain.Name, req.ID, salt)
	if err != nil {
		return nil, err
	}
	code, err := newCode()
	if err != nil {
		return nil, err
	}
	e := &enrolment{ID: req.ID, Salt: salt, Device: req.Device, PermitDays: req.PermitDays, Created: now}
	if e.PermitDays == 0 {
		e.PermitDays = defaultPermitDays
	}
	if req.TTL > 0 {
		na := now.Add(time.Duration(req.TTL) * time.Second)
		e.NotAfter = &na
	}
	exp := now.Add(s.cfg.CodeTTL)
	if e.NotAfter != nil && e.NotAfter.Before(exp) {
		exp = *e.NotAfter // no code outlives its identity
	}
	others, err := s.otherActive(req.ID, now)
	if err != nil {
		return nil, err
	}
	if err := s.store.createEnrolment(id, e, code, exp); err != nil {
		return nil, err
	}
	s.cfg.Logger.InfoContext(r.Context(), "enrolment created", "idhash", hex.EncodeToString(id[:]), "device", req.Device,
		"temporary", req.TTL > 0, "other_active", others)
	return &wire.EnrolmentCreated{Code: code, IDHash: hex.EncodeToString(id[:]), ExpiresAt: exp, NotAfter: e.NotAfter, OtherActive: others}, nil
}

func (s *Server) handleRedeem(w http.ResponseWriter, r *http.Request) {
	resp, err := s.redeem(w, r)
	s.adminResult("redeem", err)
	if err != nil {
		httpx.WriteError(w, r, s.cfg.Logger, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, resp)
}

func (s *Server) redeem(w http.ResponseWriter, r *http.Request) (*wire.EnrolPackage, error) {
	var req wire.RedeemRequest
	if err := httpx.DecodeJSON(w, r, httpx.MaxBody, &req); err != nil {
		return nil, err
	}
	if len(req.CodeID) != 32 || len(req.Proof) != 32 || len(req.ClientKey) != ticket.SealKeySize {
		return nil, httpx.Errorf(http.StatusBadRequest, "bad_request", "code_id, proof and client_key must be 32 bytes each")
	}
	if req.PermitKey != nil && (len(req.PermitKey) != ticket.SealKeySize || bytes.Equal(req.PermitKey, req.ClientKey)) {
		return nil, httpx.Errorf(http.StatusBadRequest, "bad_request", "permit_key must be 32 bytes and differ from client_key")
	}
	// The client collects its shares from every DTA right after: with one down, it
	// would fail after the code was used up. Refuse before touching the code.
	if err := s.probe.unavailable(w, s.cfg.DTAProbeInterval, "enrolment needs every DTA of the domain",
		"the enrolment code was not used and is still valid: try again later"); err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	e, raw, err := s.store.redeem(&req, s.domain.Name, now, func(id pairing.IDHash, e *enrolment, proofKey [32]byte) (any, time.Time, error) {
		if !e.usable(now) {
			return nil, time.Time{}, errUnknownCode
		}
		pkg, err := s.enrolPackage(id, e, now)
		if err != nil {
			return nil, time.Time{}, err
		}
		pkg.MAC = wire.PackageMAC(proofKey, pkg, e.ClientKey, e.PermitKey)
		return pkg, s.ticketExpiry(e, now), nil
	})
	switch {
	case errors.Is(err, errNotFound):
		return nil, errUnknownCode
	case errors.Is(err, errCodeProof):
		s.cfg.Logger.WarnContext(r.Context(), "enrolment code proof failed: the request was altered in transit")
		return nil, errCodeProofFailed
	case err != nil:
		return nil, err
	}
	if !e.usable(now) { // revoked or expired since the code was redeemed
		return nil, errUnknownCode
	}
	var pkg wire.EnrolPackage
	if err := json.Unmarshal(raw, &pkg); err != nil {
		return nil, err
	}
	s.cfg.Logger.InfoContext(r.Context(), "enrolment redeemed", "idhash", pkg.IDHash)
	return &pkg, nil
}

// enrolPackage is the answer to the redemption of e's code: its client ticket and,
// with permits, its first permit ticket, for the keys e now holds.
func (s *Server) enrolPackage(id pairing.IDHash, e *enrolment, now time.Time) (*wire.EnrolPackage, error) {
	idHex := hex.EncodeToString(id[:])
	notAfter := s.ticketExpiry(e, now)
	client, err := ticket.Sign(ticket.Ticket{Domain: s.domain.Name, Kind: ticket.KindClient, IDHash: idHex,
		SealKey: hex.EncodeToString(e.ClientKey), NotAfter: notAfter}, s.cfg.RegistrarKey)
	if err != nil {
		return nil, err
	}
	pkg := &wire.EnrolPackage{Domain: s.domain.Name, ID: e.ID, Salt: e.Salt, IDHash: idHex, Device: e.Device,
		NotAfter: e.NotAfter, ClientTicket: client, BundleFingerprint: s.trustBundle().fingerprint}
	if s.domain.PermitPeriod != 0 {
		pt, err := s.permitTicket(id, e, e.PermitDays, now)
		if err != nil {
			return nil, err
		}
		pkg.PermitTicket, pkg.FirstSlot, pkg.LastSlot = pt.Ticket, pt.FirstSlot, pt.LastSlot
	}
	return pkg, nil
}

// ticketExpiry is when tickets handed out now expire: after TicketTTL. A temporary
// identity's tickets may outlive it (a short identity must still have time to
// collect its shares); its permit slots do not, and this server refuses it after.
func (s *Server) ticketExpiry(_ *enrolment, now time.Time) time.Time {
	return now.Add(s.cfg.TicketTTL)
}

// permitTicket signs a permit ticket for days slots from the current one (not beyond a
// temporary identity's end): the same ticket for the same request within a
// permitWindow (permitTicketFor).
//
// days is what the client asked for: 0, or more than the enrolment's PermitDays (the
// registrar's bound), gives PermitDays.
func (s *Server) permitTicket(id pairing.IDHash, e *enrolment, days int, now time.Time) (*wire.PermitTicket, error) {
	if limit := cmp.Or(e.PermitDays, defaultPermitDays); days <= 0 || days > limit {
		days = limit
	}
	first := s.domain.Slot(now)
	last := first + uint64(days) - 1
	if e.NotAfter != nil {
		last = min(last, max(first, s.domain.Slot(*e.NotAfter)))
	}
	key := e.permitKey()
	if len(key) != ticket.SealKeySize {
		return nil, errNoClientKey
	}
	notAfter, nonce := s.permitTicketFor(id, key, first, last, now)
	tk, err := ticket.Sign(ticket.Ticket{Domain: s.domain.Name, Kind: ticket.KindPermit, IDHash: hex.EncodeToString(id[:]),
		SealKey: hex.EncodeToString(key), FirstSlot: first, LastSlot: last, NotAfter: notAfter, Nonce: nonce}, s.cfg.RegistrarKey)
	if err != nil {
		return nil, err
	}
	return &wire.PermitTicket{Ticket: tk, FirstSlot: first, LastSlot: last}, nil
}

// identities resolves a wire.IdentityRequest to enrolled idhashes: by ID, every
// enrolment of the ID; by idhash, that one.
func (s *Server) identities(w http.ResponseWriter, r *http.Request) ([]pairing.IDHash, error) {
	var req wire.IdentityRequest
	if err := httpx.DecodeJSON(w, r, httpx.MaxBody, &req); err != nil {
		return nil, err
	}
	switch {
	case req.IDHash != "" && req.ID != "":
		return nil, httpx.Errorf(http.StatusBadRequest, "bad_request", "name the identity by id or by idhash, not both")
	case req.IDHash != "":
		var id pairing.IDHash
		b, err := hex.DecodeString(req.IDHash)
		if err != nil || len(b) != len(id) {
			return nil, httpx.Errorf(http.StatusBadRequest, "bad_request", "idhash must be 64 hex digits")
		}
		copy(id[:], b)
		if _, err := s.store.enrolment(id); errors.Is(err, errNotFound) {
			return nil, errUnknownIdentity
		} else if err != nil {
			return nil, err
		}
		return []pairing.IDHash{id}, nil
	case req.ID != "":
		ids, err := s.store.enrolmentsOf(req.ID)
		if errors.Is(err, errNotFound) {
			return nil, errUnknownIdentity
		}
		return ids, err
	default:
		return nil, httpx.Errorf(http.StatusBadRequest, "bad_request", "name the identity by id or idhash")
	}
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	res, err := s.revoke(w, r)
	s.adminResult("revoke", err)
	if err != nil {
		httpx.WriteError(w, r, s.cfg.Logger, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, res)
}

// revoke marks the named enrolments revoked here at once, then sends a
// registrar-signed notice for each to every DTA, which then issue it no shares or
// permits. In a threshold domain it also reports whether enough DTAs have it and
// retries the others in the background (revocationQuorum).
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) (*wire.RevokeResult, error) {
	ids, err := s.identities(w, r)
	if err != nil {
		return nil, err
	}
	res := &wire.RevokeResult{}
	now := s.cfg.Now()
	var storeErr error
	for _, id := range ids {
		// Revoked before: counted apart, and told to the DTAs again (one that missed it
		// while the server restarted gets it now).
		if e, err := s.store.enrolment(id); err == nil && e.Revoked != nil {
			res.AlreadyRevoked++
		}
		if storeErr = s.store.revoke(id, now); storeErr != nil {
			break // those revoked so far are still told to the DTAs
		}
		res.IDHashes = append(res.IDHashes, hex.EncodeToString(id[:]))
	}
	unreachable := map[uint32]error{}
	failedBy := map[string][]uint32{}
	for _, idHex := range res.IDHashes {
		failed, err := s.notifyRevocationTo(r.Context(), idHex, nil)
		if err != nil {
			return nil, err
		}
		failedBy[idHex] = failed
		for _, x := range failed {
			unreachable[x] = nil
		}
		s.cfg.Logger.InfoContext(r.Context(), "identity revoked", "idhash", idHex, "unreachable_dtas", failed)
	}
	if storeErr != nil {
		return nil, storeErr
	}
	if len(unreachable) > 0 {
		res.Unreachable = sortedKeys(unreachable)
	}
	s.revocationQuorum(r.Context(), res, failedBy)
	return res, nil
}

// notifyRevocationTo posts one revoke ticket to the DTAs with the given indices (nil:
// every DTA) in parallel and returns the indices of those that did not accept it.
func (s *Server) notifyRevocationTo(ctx context.Context, idHex string, only []uint32) ([]uint32, error) {
	tk, err := ticket.Sign(ticket.Ticket{Domain: s.domain.Name, Kind: ticket.KindRevoke, IDHash: idHex,
		NotAfter: s.cfg.Now().Add(time.Hour)}, s.cfg.RegistrarKey)
	if err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx) // finish notifying even if the admin client goes away
	var mu sync.Mutex
	failed := map[uint32]error{}
	var wg sync.WaitGroup
	for _, d := range s.trustBundle().b.DTAs {
		if !among(only, d.Index) {
			continue
		}
		wg.Go(func() {
			if _, err := postDTA(ctx, s.cfg.DTAClient, d.URL+"/v1/revocations", tk); err != nil {
				mu.Lock()
				failed[d.Index] = err
				mu.Unlock()
				s.cfg.Logger.WarnContext(ctx, "revocation not delivered", "dta", d.Index, "err", err)
			}
		})
	}
	wg.Wait()
	if len(failed) == 0 {
		return nil, nil
	}
	return sortedKeys(failed), nil
}

func (s *Server) handleUnblock(w http.ResponseWriter, r *http.Request) {
	res, err := s.unblock(w, r)
	s.adminResult("unblock", err)
	if err != nil {
		httpx.WriteError(w, r, s.cfg.Logger, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, res)
}

// unblock clears the failure counts and the daily hold of the named enrolments.
func (s *Server) unblock(w http.ResponseWriter, r *http.Request) (*wire.UnblockResult, error) {
	ids, err := s.identities(w, r)
	if err != nil {
		return nil, err
	}
	res := &wire.UnblockResult{IDHashes: make([]string, len(ids)), Blocked: []string{}}
	now := s.cfg.Now()
	for i, id := range ids {
		wasBlocked, err := s.fails.reset(id, now)
		if err != nil {
			return nil, err
		}
		res.IDHashes[i] = hex.EncodeToString(id[:])
		if wasBlocked {
			res.Blocked = append(res.Blocked, res.IDHashes[i])
		}
		s.cfg.Logger.InfoContext(r.Context(), "identity unblocked", "idhash", res.IDHashes[i], "was_blocked", wasBlocked)
	}
	return res, nil
}

func (s *Server) handlePermits(w http.ResponseWriter, r *http.Request) {
	resp, err := s.permits(w, r)
	s.adminResult("permit", err)
	if err != nil {
		httpx.WriteError(w, r, s.cfg.Logger, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, resp)
}

// permits gives a logged-in identity a permit ticket for its next Days periods.
func (s *Server) permits(w http.ResponseWriter, r *http.Request) (*wire.PermitTicket, error) {
	tok, ok := middleware.BearerToken(r)
	if !ok {
		return nil, errBadToken
	}
	now := s.cfg.Now()
	c, err := middleware.NewKeySet(s.TokenPublicKey()).Verify(tok, s.domain.Name, s.domain.Name, now)
	if err != nil {
		return nil, errBadToken
	}
	if revoked, err := s.jtiRevoked(c); err != nil {
		return nil, err
	} else if revoked {
		return nil, errBadToken
	}
	var req wire.PermitRequest
	if err := httpx.DecodeJSON(w, r, httpx.MaxBody, &req); err != nil {
		return nil, err
	}
	if req.Days < 0 || req.Days > maxPermitDays {
		return nil, httpx.Errorf(http.StatusBadRequest, "bad_request", "days must be 1 to %d", maxPermitDays)
	}
	if s.domain.PermitPeriod == 0 {
		return nil, errNoPermits
	}
	if err := s.probe.unavailable(w, s.cfg.DTAProbeInterval, "permits need every DTA of the domain", "try again later"); err != nil {
		return nil, err
	}
	var id pairing.IDHash
	if b, err := hex.DecodeString(c.IDHash); err != nil || len(b) != len(id) {
		return nil, errBadToken
	} else {
		copy(id[:], b)
	}
	e, err := s.store.enrolment(id)
	if errors.Is(err, errNotFound) {
		return nil, errNotAllowed
	} else if err != nil {
		return nil, err
	}
	if !e.usable(now) {
		return nil, errNotAllowed
	}
	return s.permitTicket(id, e, req.Days, now)
}
