package dta

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// API errors of share issuance; their codes are stable.
var (
	errNonceReused = httpx.Errorf(http.StatusConflict, "nonce_reused", "this ticket's nonce was already used for another ticket")
	errRevoked     = httpx.Errorf(http.StatusForbidden, "revoked", "this identity is revoked: it gets no shares or permits")
	errPending     = httpx.Errorf(http.StatusServiceUnavailable, "retry_later", "this ticket's issuance is being recorded; retry later")
	errLog         = httpx.Errorf(http.StatusServiceUnavailable, "log_unavailable", "the transparency log cannot record the issuance now; retry later")
	errNoPermits   = httpx.Errorf(http.StatusBadRequest, "no_permits", "this domain does not use time permits")
	errBadSealKey  = httpx.Errorf(http.StatusBadRequest, "bad_seal_key", "the seal key named in the ticket is not a usable X25519 public key")
)

// checkTicket verifies a ticket of kind for this DTA's domain and maps the failures to
// API errors.
func (s *Service) checkTicket(b *bundle.Bundle, token, kind string) (*ticket.Ticket, error) {
	tk, err := ticket.Verify(token, b.RegistrarPublicKey(), b.Domain, kind, s.cfg.Now())
	switch {
	case err == nil:
		return tk, nil
	case errors.Is(err, ticket.ErrExpired):
		return nil, httpx.Errorf(http.StatusUnauthorized, "expired_ticket", "the ticket has expired; ask the registrar for a new one")
	case errors.Is(err, ticket.ErrDomain):
		return nil, httpx.Errorf(http.StatusForbidden, "wrong_domain", "the ticket is for another domain")
	case errors.Is(err, ticket.ErrKind):
		return nil, httpx.Errorf(http.StatusBadRequest, "wrong_kind", "the ticket is not for this kind of request")
	default:
		return nil, httpx.Errorf(http.StatusUnauthorized, "invalid_ticket", "the ticket is not signed by this domain's registrar or is malformed")
	}
}

// issue acts on a ticket verified under k's bundle exactly once. token is the
// ticket's encoding. A retry of a ticket gets what was issued for it, byte for byte,
// from the answer kept in memory (answers.go) or else from the record: nothing is
// computed again, and the same checks apply (the nonce, then the revocation).
func (s *Service) issue(ctx context.Context, k *keys, tk *ticket.Ticket, token string) (*wire.DTAResponse, error) {
	defer s.locks.lock(tk.Nonce)()

	ticketHash := sha256.Sum256([]byte(token))
	ticketHex := hex.EncodeToString(ticketHash[:])
	checkRevoked := ""
	if tk.Kind != ticket.KindRevoke {
		checkRevoked = tk.IDHash
	}
	if a := s.answers.get(tk.Nonce); a != nil {
		// Kept only once its record was complete: the record says the same.
		if a.ticketSHA256 != ticketHex {
			return nil, errNonceReused
		}
		if checkRevoked != "" {
			if revoked, err := s.store.revoked(checkRevoked); err != nil {
				return nil, err
			} else if revoked {
				return nil, errRevoked
			}
		}
		return a.resp, nil
	}
	rec, revoked, err := s.lookup(tk.Nonce, checkRevoked)
	switch {
	case err == nil:
		if rec.TicketSHA256 != ticketHex {
			return nil, errNonceReused
		}
	case !errors.Is(err, errNoRecord):
		return nil, err
	}
	if revoked {
		return nil, errRevoked
	}
	if rec != nil {
		if rec.pending() {
			return nil, errPending
		}
		return s.respond(k, tk.Nonce, rec), nil
	}
	sealed, slots, err := s.compute(k, tk, ticketHash)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().Unix()
	rec = &record{TicketSHA256: ticketHex, Kind: tk.Kind, SizeHint: s.logSize.Load(), NotAfter: tk.NotAfter.Unix(), Sealed: sealed}
	subject := ""
	if tk.IDHash != "" {
		subject = wire.Subject(idHash(tk))
	}
	for i, slot := range slots {
		e := wire.Entry{Version: wire.EntryVersion, DTA: s.cfg.Index, Domain: k.bundle.Domain, Kind: tk.Kind,
			Subject: subject, Slot: slot, TicketSHA256: ticketHex, Time: now}
		if sealed != nil {
			e.SealedSHA256 = sha256Hex(sealed[i])
		}
		leaf, err := e.Marshal()
		if err != nil {
			return nil, err
		}
		rec.Entries = append(rec.Entries, leaf)
		rec.Slots = append(rec.Slots, slot)
	}
	revoke := ""
	if tk.Kind == ticket.KindRevoke {
		revoke = tk.IDHash
	}
	// Pending record, log append and completion, grouped with other issuances
	// (commit.go); the round checks the revocation again, as one may have been
	// acknowledged while the share was computed.
	var appendErr *errAppend
	switch err := s.commits.submit(tk.Nonce, rec, revoke, checkRevoked); {
	case errors.As(err, &appendErr):
		// The record stays pending until the committer's recovery finds or writes its
		// entries; a retry of the ticket is answered then.
		s.cfg.Logger.ErrorContext(ctx, "log append failed", "kind", tk.Kind, "err", appendErr.err)
		return nil, errLog
	case errors.Is(err, errClosing):
		return nil, errLog
	case err != nil:
		return nil, err
	}
	if s.cfg.Logger.Enabled(ctx, slog.LevelInfo) {
		s.cfg.Logger.InfoContext(ctx, "issued", "kind", tk.Kind, "log_indices", rec.Indices)
	}
	return s.respond(k, tk.Nonce, rec), nil
}

// idHash decodes the idhash of a ticket, which ticket.Verify checked (64 lower-case hex
// digits, none for a server ticket). Anything else gives the zero IDHash: decoding
// into the array directly would panic on more than 64 digits, and no input may make
// the DTA panic, whatever a check elsewhere lets through.
func idHash(tk *ticket.Ticket) pairing.IDHash {
	var id pairing.IDHash
	if b, err := hex.DecodeString(tk.IDHash); err == nil && len(b) == len(id) {
		copy(id[:], b)
	}
	return id
}

// lookup returns the record of a ticket nonce: from the committer while its completion
// is not yet on disk, otherwise from the store (errNoRecord if there is none); and, if
// revokedIDHash is not empty, whether that identity is revoked (one read transaction
// for both).
func (s *Service) lookup(nonce, revokedIDHash string) (rec *record, revoked bool, err error) {
	if r := s.commits.lookup(nonce); r != nil {
		if revokedIDHash != "" {
			if revoked, err = s.store.revoked(revokedIDHash); err != nil {
				return nil, false, err
			}
		}
		return r, revoked, nil
	}
	return s.store.getChecked(nonce, revokedIDHash)
}

// compute makes the shares a ticket asks for, each sealed to the ticket's key (nil for
// a revocation), and the slot of each item.
func (s *Service) compute(k *keys, tk *ticket.Ticket, ticketHash [32]byte) (sealed [][]byte, slots []uint64, err error) {
	domain, index, id := k.bundle.Domain, s.cfg.Index, idHash(tk)
	sealKey, _ := hex.DecodeString(tk.SealKey) // checked by ticket.Verify
	seal := func(slot uint64, plaintext []byte) error {
		c, err := wire.Seal(sealKey, &wire.SealContext{Domain: domain, DTA: index, Kind: tk.Kind, Slot: slot, TicketSHA256: ticketHash}, plaintext)
		if err != nil {
			return errBadSealKey
		}
		sealed, slots = append(sealed, c), append(slots, slot)
		return nil
	}
	// client and permit shares: S ‖ DLEQ proof, for base point of each slot.
	issue := func(slot uint64, base *pairing.G1) error {
		share, proof, err := pairing.IssueShare(nil, k.master, k.commitment, base, pairing.ShareContext(domain, index, tk.Kind, slot))
		if err != nil {
			return err
		}
		return seal(slot, append(share.Bytes(), proof.Bytes()...))
	}
	switch tk.Kind {
	case ticket.KindClient:
		err = issue(0, pairing.IdentityPoint(id))
	case ticket.KindPermit:
		period := k.bundle.PermitPeriod
		if period == 0 {
			return nil, nil, errNoPermits
		}
		// Counted, not compared with LastSlot: no slot value can make the loop wrap.
		for i := uint64(0); i <= tk.LastSlot-tk.FirstSlot && err == nil; i++ {
			slot := tk.FirstSlot + i
			err = issue(slot, pairing.PermitPoint(id, slot, period))
		}
	case ticket.KindServer:
		err = seal(0, pairing.G2Generator().Mul(k.master).Bytes())
	case ticket.KindRevoke:
		return nil, []uint64{0}, nil
	default:
		err = fmt.Errorf("dta: unknown ticket kind %q", tk.Kind)
	}
	if err != nil {
		return nil, nil, err
	}
	return sealed, slots, nil
}

// respond builds the response from the completed record of nonce and keeps it for
// the ticket's retries (answers.go).
func (s *Service) respond(k *keys, nonce string, rec *record) *wire.DTAResponse {
	resp := &wire.DTAResponse{DTA: s.cfg.Index}
	for i, entry := range rec.Entries {
		sh := wire.DTAShare{Entry: entry, Promise: wire.NewPromise(k.signing, k.record.LogOrigin, rec.Indices[i], entry)}
		if i < len(rec.Slots) {
			sh.Slot = rec.Slots[i]
		}
		if i < len(rec.Sealed) {
			sh.Sealed = rec.Sealed[i]
		}
		resp.Shares = append(resp.Shares, sh)
	}
	s.answers.add(nonce, rec.TicketSHA256, resp)
	return resp
}

// raiseTo sets a to v if v is larger, atomically.
func raiseTo(a *atomic.Uint64, v uint64) {
	for cur := a.Load(); v > cur; cur = a.Load() {
		if a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// nonceLocks serialises the requests for one ticket nonce (a retry racing the
// original) without making requests for different nonces wait for each other: a lock
// is held across the log append, which takes milliseconds.
type nonceLocks struct {
	mu sync.Mutex
	m  map[string]*nonceLock
}

type nonceLock struct {
	sync.Mutex
	refs int
}

// lock locks nonce and returns the function that unlocks it.
func (l *nonceLocks) lock(nonce string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*nonceLock{}
	}
	e := l.m[nonce]
	if e == nil {
		e = &nonceLock{}
		l.m[nonce] = e
	}
	e.refs++
	l.mu.Unlock()
	e.Lock()
	return func() {
		e.Unlock()
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.m, nonce)
		}
		l.mu.Unlock()
	}
}

// recoverPending finishes the records a crash left pending: each entry already in the
// log (at or after the record's size hint) gets its index; the others are appended now.
func (s *Service) recoverPending(ctx context.Context) error {
	pending, err := s.store.pendingRecords()
	if err != nil || len(pending) == 0 {
		return err
	}
	size, err := s.log.Size(ctx)
	if err != nil {
		return err
	}
	from := size
	for _, r := range pending {
		from = min(from, r.SizeHint)
	}
	found := map[string]uint64{}
	err = s.log.ScanLeaves(ctx, from, size, func(i uint64, leaf []byte) error {
		found[string(leaf)] = i
		return nil
	})
	if err != nil {
		return fmt.Errorf("dta: recovery scan of the log: %w", err)
	}
	// In the order the rounds wrote them, so that their entries keep their order.
	nonces := slices.SortedFunc(maps.Keys(pending), func(a, b string) int {
		return cmp.Or(cmp.Compare(pending[a].Round, pending[b].Round), cmp.Compare(pending[a].Offset, pending[b].Offset), strings.Compare(a, b))
	})
	var revoked map[string]bool // subjects of revoked identities, read when needed
	var appended, dropped int
	for _, nonce := range nonces {
		r := pending[nonce]
		r.Indices = make([]uint64, len(r.Entries))
		var missing [][]byte
		var at []int
		for i, e := range r.Entries {
			if idx, ok := found[string(e)]; ok && idx >= r.SizeHint {
				r.Indices[i] = idx
			} else {
				missing, at = append(missing, e), append(at, i)
			}
		}
		if len(missing) > 0 && (r.Kind == ticket.KindClient || r.Kind == ticket.KindPermit) {
			// Not all of it is logged, so its answer was an error (an answer leaves only
			// once all its entries are durable): if its identity has been revoked since,
			// logging the rest now would log shares after the revocation. Its record goes,
			// whatever part of it a failed append left in the log (before the
			// revocation): a retry of its ticket is refused as revoked, without it.
			if revoked == nil {
				if revoked, err = s.store.revokedSubjects(); err != nil {
					return err
				}
			}
			if e, err := wire.ParseEntry(r.Entries[0]); err == nil && revoked[e.Subject] {
				if err := s.store.drop(nonce, r); err != nil {
					return err
				}
				dropped++
				continue
			}
		}
		if len(missing) > 0 {
			idx, err := s.log.AppendAll(ctx, missing)
			if err != nil {
				return fmt.Errorf("dta: recovery append: %w", err)
			}
			for j, i := range at {
				r.Indices[i] = idx[j]
			}
			appended += len(missing)
		}
		if err := s.store.put(nonce, r, ""); err != nil {
			return err
		}
	}
	s.cfg.Logger.Info("recovered pending issuances", "records", len(pending), "entries_appended", appended,
		"dropped_revoked", dropped)
	return nil
}
