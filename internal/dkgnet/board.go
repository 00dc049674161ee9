package dkgnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/polyroot/polyroot/internal/dkg"
	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/internal/wire"
)

// Routes of a board. Bodies are application/octet-stream: a dkg message (its binary
// encoding), a notice, or, in a GET answer, a list of u32 length ‖ item.
const (
	PathMessages = "/dkg/v1/messages"
	PathNotices  = "/dkg/v1/notices"
	PathRounds   = "/dkg/v1/rounds/" // + hello, deal, complaint, answer, feldman, disclose, reveal or confirm
)

const contentType = "application/octet-stream"

// pollWait bounds how long a GET of a round waits for the round to close.
var pollWait = 10 * time.Second

// maxWaitingExtra is how many GETs beyond twice the number of parties may wait at once
// for a round to close (each other party's Run waits with one at a time).
var maxWaitingExtra = 32

// A Board holds the messages of one ceremony that the parties post to one member, and
// serves them to the others once its member closes a round. It is an http.Handler;
// its member's Run reads it directly. A Board is safe for concurrent use.
type Board struct {
	pl     *plan
	logger *slog.Logger
	mux    *http.ServeMux

	mu      sync.Mutex
	sess    *dkg.Session // nil until the hello round is over
	id      [32]byte
	held    map[string]map[int][]item // slot → party → at most two distinct items
	closed  map[string]bool           // round names closed by the member's Run
	encoded map[string][]byte         // a closed round as GETs serve it, built once
	waiting int                       // GETs waiting for a round to close
	changed chan struct{}             // closed and replaced on every change
}

// An item is a message or a notice as posted, with its encoding.
type item struct {
	raw   []byte
	msg   *dkg.Message
	not   *notice
	party int // the sender's index in plan.parties
}

// NewBoard returns the board of a ceremony described by f. Serve it (its ServeHTTP)
// at the member's URL in f before calling Run.
func NewBoard(f *SessionFile, logger *slog.Logger) (*Board, error) {
	pl, err := newPlan(f)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b := &Board{pl: pl, logger: logger, held: map[string]map[int][]item{}, closed: map[string]bool{}, encoded: map[string][]byte{},
		changed: make(chan struct{})}
	b.mux = http.NewServeMux()
	b.mux.HandleFunc("POST "+PathMessages, b.postMessage)
	b.mux.HandleFunc("POST "+PathNotices, b.postNotice)
	b.mux.HandleFunc("GET "+PathRounds+"{round}", b.getRound)
	return b, nil
}

// ServeHTTP serves the board's routes.
func (b *Board) ServeHTTP(w http.ResponseWriter, r *http.Request) { b.mux.ServeHTTP(w, r) }

// roundNames are the rounds a GET may read, in order.
var roundNames = []string{"hello", "deal", "complaint", "answer", "feldman", "disclose", "reveal", "confirm"}

func doneSlot(k dkg.Kind) string { return "done:" + k.String() }

func (b *Board) signal() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *Board) fail(w http.ResponseWriter, r *http.Request, status int, code, format string, args ...any) {
	httpx.WriteError(w, r, b.logger, httpx.Errorf(status, code, format, args...))
}

// readBody reads a POST body of at most limit bytes.
func (b *Board) readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, bool) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != contentType {
		b.fail(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as %s", contentType)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		b.fail(w, r, http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than %d bytes", limit)
		return nil, false
	case err != nil:
		b.fail(w, r, http.StatusBadRequest, "bad_body", "could not read the body")
		return nil, false
	}
	return body, true
}

// store files it under slot for party k, closed if round is closed. It keeps the
// first item and one different second (equivocation evidence); it reports
// http.StatusOK for an item already held, even in a closed round: a party whose first
// post got through but whose answer was lost (a proxy's 502, a reset connection)
// retries it, and must learn that the board holds it.
func (b *Board) store(w http.ResponseWriter, r *http.Request, slot, round string, k int, it item) {
	held := b.held[slot][k]
	for _, h := range held {
		if bytes.Equal(h.raw, it.raw) {
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	if b.closed[round] {
		b.fail(w, r, http.StatusConflict, "round_closed", "round %s is closed on this board", round)
		return
	}
	if b.held[slot] == nil {
		b.held[slot] = map[int][]item{}
	}
	if len(held) >= 2 {
		b.fail(w, r, http.StatusConflict, "equivocation_held", "two different %s items of %s are held already", slot, b.pl.parties[k])
		return
	}
	b.held[slot][k] = append(held, it)
	b.signal()
	w.WriteHeader(http.StatusNoContent)
}

func (b *Board) postMessage(w http.ResponseWriter, r *http.Request) {
	body, ok := b.readBody(w, r, b.pl.maxMsg)
	if !ok {
		return
	}
	b.mu.Lock()
	sess, id := b.sess, b.id // fixed once set
	b.mu.Unlock()
	if sess == nil {
		b.fail(w, r, http.StatusConflict, "not_ready", "this member has not fixed the session yet (hello round); retry")
		return
	}
	// The header (session, kind, sender) and the sender's signature first: no point
	// is decoded (the costly part) for a message its sender did not sign.
	m, err := sess.DecodeAccepted(body, id)
	switch {
	case errors.Is(err, dkg.ErrOtherSession):
		b.fail(w, r, http.StatusBadRequest, "wrong_session", "the message belongs to another session")
		return
	case errors.Is(err, dkg.ErrMessage):
		b.fail(w, r, http.StatusBadRequest, "bad_message", "%v", err)
		return
	case err != nil:
		b.fail(w, r, http.StatusForbidden, "rejected", "%v", err)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// DecodeAccepted checked that From may send this kind; find its party by key.
	k := b.senderParty(m)
	if k < 0 {
		b.fail(w, r, http.StatusForbidden, "rejected", "DTA %d is not a party", m.From)
		return
	}
	b.store(w, r, m.Kind.String(), m.Kind.String(), k, item{raw: body, msg: m})
}

// senderParty returns the party that sent m (Accept must have passed).
func (b *Board) senderParty(m *dkg.Message) int {
	senders := b.sess.Members
	if m.Kind == dkg.KindDeal || m.Kind == dkg.KindAnswer || m.Kind == dkg.KindFeldman {
		if b.sess.Reshare != nil {
			senders = b.sess.Reshare.Dealers
		}
	}
	for _, s := range senders {
		if s.Index == m.From {
			return b.pl.find(s.SigningKey)
		}
	}
	return -1
}

func (b *Board) postNotice(w http.ResponseWriter, r *http.Request) {
	body, ok := b.readBody(w, r, noticeSize)
	if !ok {
		return
	}
	n, err := decodeNotice(body)
	if err != nil {
		b.fail(w, r, http.StatusBadRequest, "bad_notice", "%v", err)
		return
	}
	k := b.pl.find(n.signer[:])
	if k < 0 {
		b.fail(w, r, http.StatusForbidden, "rejected", "the signer is not a party of this session")
		return
	}
	if err := n.verify(); err != nil {
		b.fail(w, r, http.StatusForbidden, "rejected", "%v", err)
		return
	}
	if n.typ == noticeHello {
		if n.bind != b.pl.hash {
			b.fail(w, r, http.StatusBadRequest, "wrong_session", "the hello is for another session file")
			return
		}
		if _, err := wire.Seal(n.value[:], &wire.SealContext{}, nil); err != nil {
			b.fail(w, r, http.StatusBadRequest, "bad_seal_key", "the seal key is not an X25519 public key")
			return
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	slot, round := "hello", "hello"
	if n.typ != noticeHello {
		switch {
		case b.sess == nil:
			b.fail(w, r, http.StatusConflict, "not_ready", "this member has not fixed the session yet (hello round); retry")
			return
		case n.bind != b.id:
			b.fail(w, r, http.StatusBadRequest, "wrong_session", "the notice belongs to another session")
			return
		}
		slot, round = "confirm", "confirm"
		if n.typ == noticeDone {
			slot, round = doneSlot(n.round), n.round.String()
		}
	}
	b.store(w, r, slot, round, k, item{raw: body, not: n})
}

func (b *Board) getRound(w http.ResponseWriter, r *http.Request) {
	round := r.PathValue("round")
	if !slices.Contains(roundNames, round) {
		b.fail(w, r, http.StatusNotFound, "no_round", "no round %.20q", round)
		return
	}
	// A GET of an open round waits for it to close (a long poll), but only so many at
	// once: beyond that it is answered round_open at once and the reader retries, so
	// that idle readers cannot pile up goroutines and connections without bound.
	b.mu.Lock()
	closed, wait := b.closed[round], b.waiting < 2*len(b.pl.parties)+maxWaitingExtra
	if !closed && wait {
		b.waiting++
		defer func() {
			b.mu.Lock()
			b.waiting--
			b.mu.Unlock()
		}()
	}
	b.mu.Unlock()
	if !closed && wait {
		ctx, cancel := context.WithTimeout(r.Context(), pollWait)
		defer cancel()
		closed = b.await(ctx, func() bool { return b.closed[round] })
	}
	if !closed {
		b.fail(w, r, http.StatusServiceUnavailable, "round_open", "round %s is still open on this board; retry", round)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Write(b.encodedRound(round))
}

// encodedRound returns closed round as a GET serves it: built at the first GET and
// shared by all (a closed round takes no more items), so that many readers, slow ones
// included, cost no more than one copy of it.
func (b *Board) encodedRound(round string) []byte {
	b.mu.Lock()
	out, ok := b.encoded[round]
	b.mu.Unlock()
	if ok {
		return out
	}
	var raws [][]byte
	for _, it := range b.items(round) {
		raws = append(raws, it.raw)
	}
	out = encodeItems(raws)
	b.mu.Lock()
	defer b.mu.Unlock()
	if first, ok := b.encoded[round]; ok { // another GET built it meanwhile
		return first
	}
	b.encoded[round] = out
	return out
}

// items returns what the board holds under slot, by party then encoding.
func (b *Board) items(slot string) []item {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []item
	for k := range b.pl.parties {
		hs := slices.Clone(b.held[slot][k])
		slices.SortFunc(hs, func(x, y item) int { return bytes.Compare(x.raw, y.raw) })
		for n := range hs {
			hs[n].party = k
		}
		out = append(out, hs...)
	}
	return out
}

// await waits until cond (called with the lock held) is true, or ctx ends.
func (b *Board) await(ctx context.Context, cond func() bool) bool {
	for {
		b.mu.Lock()
		ok, ch := cond(), b.changed
		b.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// missing returns the parties with nothing under slot (called with the lock held).
func (b *Board) missing(slot string) []party {
	var out []party
	for k, p := range b.pl.parties {
		if len(b.held[slot][k]) == 0 {
			out = append(out, p)
		}
	}
	return out
}

// closeRound freezes a round: the board takes no more posts for it and serves it.
func (b *Board) closeRound(round string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed[round] = true
	b.signal()
}

// setSession fixes the session once the hello round is over.
func (b *Board) setSession(s *dkg.Session) error {
	id, err := s.ID()
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sess != nil && b.id != id {
		return fmt.Errorf("dkgnet: the board is fixed to another session")
	}
	b.sess, b.id = s, id
	b.signal()
	return nil
}
