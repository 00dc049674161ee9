package dkgnet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/polyroot/polyroot/internal/dkg"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// DefaultRoundTimeout is a round's deadline when Config.RoundTimeout is 0.
const DefaultRoundTimeout = 30 * time.Second

// Config is one party's side of a ceremony.
type Config struct {
	// Session is the registrar's session file; the Board must be made from the same.
	Session *SessionFile
	// Key is this DTA's Ed25519 signing key (its record's signing_key is the public
	// half); it picks the party, and so the index.
	Key ed25519.PrivateKey
	// OldShare is this DTA's current master share, in a resharing where it deals
	// (nil otherwise).
	OldShare *pairing.Scalar
	// HTTPClient posts to and reads the other boards; nil: a client without timeout
	// (every request has the round's deadline). Run never follows a redirect: it uses
	// a copy whose CheckRedirect refuses them (a board that redirects refuses the post).
	HTTPClient *http.Client
	// RoundTimeout bounds each round's wait for the others, and each echo.
	RoundTimeout time.Duration
	// StartTimeout bounds the hello round: how long a party waits for the others to
	// start (operators start their DTAs by hand); 0: RoundTimeout.
	StartTimeout time.Duration
	// Logger gets a line per round; nil: none. It never gets a secret.
	Logger *slog.Logger
	// Rand is the randomness of the dealt polynomials; nil: crypto/rand.
	Rand io.Reader

	// tamper, for tests only, replaces this party's message of a round.
	tamper func(k dkg.Kind, m *dkg.Message) []*dkg.Message
	// skipPost, for tests only, keeps this party's message n of a round from party to.
	skipPost func(round string, to, n int) bool
	// confirmOther, for tests only, confirms another hash; withholdConfirm, for tests
	// only, stops before the confirmation (a party that saw the key and aborts).
	confirmOther, withholdConfirm bool
}

// A Result is a completed ceremony as one party sees it.
type Result struct {
	// Transcript is the public record: the dkg transcript and every party's
	// confirmation of its hash. Publish it beside the trust bundle.
	Transcript *Transcript
	// Index is this party's member index, 0 for an old dealer that is not a member.
	Index uint32
	// Share is the party's new master share s_j (nil if Index is 0). Store it, then
	// erase the old one; nothing else holds it.
	Share *pairing.Scalar
	// Commitment is C_j = s_j·P1, the record's commitment (nil if Index is 0).
	Commitment *pairing.G1
}

type runner struct {
	cfg    Config
	pl     *plan
	me     int
	board  *Board
	client *http.Client
	log    *slog.Logger
	sess   *dkg.Session
	// read is, per board, a digest of every closed round this party read there (its
	// own board's as the board serves it): honest boards serve every reader the same,
	// so when confirmations disagree, the board whose digest differs between the
	// parties' errors is the one that served them different messages. unread names,
	// per board, the rounds this party could not read there.
	read   [][32]byte
	unread [][]string
}

// Run takes part in the ceremony of cfg.Session as the party whose key is cfg.Key,
// with board served at its URL, and returns the result once every party has
// confirmed the same transcript. Any other outcome is an error that names the parties
// at fault where it can; the caller must then store nothing.
func Run(ctx context.Context, cfg Config, board *Board) (*Result, error) {
	if board == nil || cfg.Session == nil {
		return nil, errors.New("dkgnet: Run needs the session file and the board")
	}
	pl, err := newPlan(cfg.Session)
	if err != nil {
		return nil, err
	}
	if pl.hash != board.pl.hash {
		return nil, errors.New("dkgnet: the board was made for another session file")
	}
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("dkgnet: no Ed25519 signing key")
	}
	r := &runner{cfg: cfg, pl: board.pl, board: board, client: cfg.HTTPClient, log: cfg.Logger,
		read: make([][32]byte, len(board.pl.parties)), unread: make([][]string, len(board.pl.parties))}
	if r.me = r.pl.find(cfg.Key.Public().(ed25519.PublicKey)); r.me < 0 {
		return nil, errors.New("dkgnet: the signing key is not that of a DTA in the session")
	}
	r.client = noRedirects(r.client)
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.cfg.RoundTimeout <= 0 {
		r.cfg.RoundTimeout = DefaultRoundTimeout
	}
	if r.cfg.StartTimeout <= 0 {
		r.cfg.StartTimeout = r.cfg.RoundTimeout
	}
	if r.cfg.Rand == nil {
		r.cfg.Rand = rand.Reader
	}
	return r.run(ctx)
}

// noRedirects returns a copy of c (nil: the zero client) that does not follow
// redirects: a 3xx answer is the board's answer, a refusal. Otherwise a party's board
// could send the others' posts and reads anywhere (a blind request forgery).
func noRedirects(c *http.Client) *http.Client {
	out := &http.Client{}
	if c != nil {
		*out = *c
	}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return out
}

func names(ps []party) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	sealPub, sealPriv, err := wire.NewSealKey()
	if err != nil {
		return nil, err
	}
	defer clear(sealPriv)

	// Hello: every party's fresh seal key, under the session file's hash.
	var sp [32]byte
	copy(sp[:], sealPub)
	hellos, err := r.step(ctx, "hello", "hello", nil, newNotice(r.cfg.Key, noticeHello, 0, r.pl.hash, sp), r.acceptNotice(noticeHello, r.pl.hash))
	if err != nil {
		return nil, err
	}
	seal := map[int][]byte{}
	var twice []party
	for k, hs := range hellos {
		if len(hs) > 1 {
			twice = append(twice, r.pl.parties[k])
		}
		seal[k] = hs[0].not.value[:]
	}
	if len(twice) > 0 {
		return nil, fmt.Errorf("dkgnet: hello: two different seal keys from %s: the parties cannot agree on the session", names(twice))
	}
	r.sess = r.pl.session(func(m dkg.Member) []byte { return seal[r.pl.find(m.SigningKey)] })
	id, err := r.sess.ID()
	if err != nil {
		return nil, fmt.Errorf("dkgnet: %w", err)
	}
	if err := r.board.setSession(r.sess); err != nil {
		return nil, err
	}
	p, err := dkg.NewParticipant(r.sess, r.cfg.Key, sealPriv, r.cfg.OldShare)
	if err != nil {
		return nil, fmt.Errorf("dkgnet: %w", err)
	}
	defer p.Erase()

	kinds := []dkg.Kind{dkg.KindDeal, dkg.KindComplaint, dkg.KindAnswer, dkg.KindFeldman, dkg.KindDisclose, dkg.KindReveal}
	if r.sess.Reshare != nil {
		kinds = kinds[:3]
	}
	var msgs []*dkg.Message
	for _, k := range kinds {
		var m *dkg.Message
		switch k {
		case dkg.KindDeal:
			m, err = p.Deal(r.cfg.Rand)
		case dkg.KindComplaint:
			m, err = p.Complain(msgs)
		case dkg.KindAnswer:
			m, err = p.Answer(msgs)
		case dkg.KindFeldman:
			m, err = p.Feldman(msgs)
		case dkg.KindDisclose:
			m, err = p.Disclose(msgs)
		case dkg.KindReveal:
			m, err = p.Reveal(msgs)
		}
		if err != nil {
			return nil, fmt.Errorf("dkgnet: round %s: %w", k, err)
		}
		out := []*dkg.Message{m}
		if r.cfg.tamper != nil {
			out = r.cfg.tamper(k, m)
		}
		var raws [][]byte
		for _, m := range out {
			if m != nil {
				raws = append(raws, m.Bytes())
			}
		}
		got, err := r.step(ctx, k.String(), doneSlot(k), raws, newNotice(r.cfg.Key, noticeDone, k, id, [32]byte{}), r.acceptMessage(k))
		if err != nil {
			return nil, err
		}
		for _, k := range slices.Sorted(maps.Keys(got)) {
			for _, it := range got[k] {
				msgs = append(msgs, it.msg)
			}
		}
		r.log.Info("dkgnet: round done", "round", k.String(), "messages", len(msgs))
	}
	res, share, err := p.Finish(msgs)
	if err != nil {
		return nil, fmt.Errorf("dkgnet: %w", err)
	}
	completed := false
	defer func() {
		if share != nil && !completed {
			share.Set(new(pairing.Scalar)) // best effort, as Participant.Erase
		}
	}()
	tr := dkg.NewTranscript(r.sess, msgs, res)
	h, err := TranscriptHash(tr)
	if err != nil {
		return nil, err
	}

	// Confirmation: nobody stores a share unless everyone holds the same transcript.
	if r.cfg.withholdConfirm {
		return nil, errors.New("dkgnet: the confirmation withheld (test)")
	}
	confirmed := h
	if r.cfg.confirmOther {
		confirmed[0] ^= 1
	}
	confs, err := r.step(ctx, "confirm", "confirm", nil, newNotice(r.cfg.Key, noticeConfirm, 0, id, confirmed), r.acceptNotice(noticeConfirm, id))
	if err != nil {
		return nil, err
	}
	out := &Transcript{DKG: tr}
	var other []party
	for k := range r.pl.parties {
		var mine *notice
		for _, it := range confs[k] {
			if it.not.value == h {
				mine = it.not
			}
		}
		if mine == nil || len(confs[k]) > 1 {
			other = append(other, r.pl.parties[k])
			continue
		}
		out.confirms = append(out.confirms, mine)
	}
	if len(other) > 0 {
		return nil, fmt.Errorf("dkgnet: confirm: %s confirmed another transcript: the parties did not see the same messages; nothing is stored. "+
			"That alone does not show who misbehaved: a board that serves different DTAs different messages makes honest ones disagree. "+
			"What this DTA read from each board: %s; compare with the other DTAs' errors: a board whose digest differs between them "+
			"served them different messages. Rerun the ceremony without that DTA", names(other), r.readDigests())
	}
	completed = true
	r.log.Info("dkgnet: ceremony complete", "qualified", res.Qualified, "faults", len(res.Faults))
	result := &Result{Transcript: out, Index: r.pl.parties[r.me].member, Share: share}
	if result.Index != 0 {
		result.Commitment = res.Commitments[slices.IndexFunc(r.sess.Members, func(m dkg.Member) bool { return m.Index == result.Index })]
	}
	return result, nil
}

// TranscriptHash is SHA-256 of the transcript's JSON encoding, the value every party
// confirms.
func TranscriptHash(t *dkg.Transcript) ([32]byte, error) {
	js, err := json.Marshal(t)
	if err != nil {
		return [32]byte{}, fmt.Errorf("dkgnet: transcript: %w", err)
	}
	return sha256.Sum256(js), nil
}

// acceptNotice checks an echoed notice of type typ bound to bind.
func (r *runner) acceptNotice(typ noticeType, bind [32]byte) func([]byte) (item, error) {
	return func(raw []byte) (item, error) {
		n, err := decodeNotice(raw)
		if err != nil {
			return item{}, err
		}
		k := r.pl.find(n.signer[:])
		if n.typ != typ || n.bind != bind || k < 0 {
			return item{}, fmt.Errorf("dkgnet: a %s notice that does not belong here", n.typ)
		}
		return item{raw: raw, not: n, party: k}, n.verify()
	}
}

// acceptMessage checks an echoed dkg message of kind k.
func (r *runner) acceptMessage(k dkg.Kind) func([]byte) (item, error) {
	id, _ := r.sess.ID()
	return func(raw []byte) (item, error) {
		m, err := r.sess.DecodeAccepted(raw, id)
		if err != nil {
			return item{}, err
		}
		if m.Kind != k {
			return item{}, fmt.Errorf("dkgnet: a %s message in round %s", m.Kind, k)
		}
		r.board.mu.Lock()
		defer r.board.mu.Unlock()
		if p := r.board.senderParty(m); p >= 0 {
			return item{raw: raw, msg: m, party: p}, nil
		}
		return item{}, fmt.Errorf("dkgnet: DTA %d is not a party", m.From)
	}
}

// step plays one round: it posts msgs then n to every board (its own included), waits
// until its own board holds an item of every party under waitSlot, closes the round on
// its board, and (but for the confirm round) echoes: the union of the round's items on every board, checked with
// accept, by party, at most the two lowest distinct encodings each (deterministic).
// It posts n to a board only once that board took every message of msgs, and it
// aborts the round, naming the board, when a board refuses a post for good or has not
// taken them all by the deadline: a party never closes a round that its own messages
// may be missing from, as the others would then evaluate a set without them.
func (r *runner) step(ctx context.Context, round, waitSlot string, msgs [][]byte, n *notice, accept func([]byte) (item, error)) (map[int][]item, error) {
	wait := r.cfg.RoundTimeout
	if round == "hello" {
		wait = r.cfg.StartTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	// pctx ends the posts (and the wait) as soon as one board refuses one for good.
	pctx, abort := context.WithCancel(wctx)
	defer abort()
	type failure struct {
		to   int
		err  error
		late bool // still retrying at the deadline, or the round was closed there
	}
	var fmu sync.Mutex
	var failed []failure
	var wg sync.WaitGroup
	for to := range r.pl.parties {
		wg.Go(func() {
			err := r.deliver(pctx, round, to, msgs, n)
			if err == nil {
				return
			}
			fmu.Lock()
			defer fmu.Unlock()
			if pctx.Err() != nil && wctx.Err() == nil {
				return // stopped by another board's refusal
			}
			// A board whose round is closed already has given up on this round (its
			// DTA aborts): this run waits for the deadline as for a board that does
			// not answer, so that the error names whoever is missing, not that board.
			var se *statusError
			late := wctx.Err() != nil || errors.As(err, &se) && se.code == "round_closed"
			failed = append(failed, failure{to: to, err: err, late: late})
			if !late {
				abort()
			}
		})
	}
	r.board.await(pctx, func() bool { return len(r.board.missing(waitSlot)) == 0 })
	wg.Wait()
	r.board.mu.Lock()
	missing := r.board.missing(waitSlot)
	r.board.mu.Unlock()
	r.board.closeRound(round)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dkgnet: round %s: %w", round, err)
	}
	slices.SortFunc(failed, func(x, y failure) int { return x.to - y.to })
	var refused, late []string
	for _, f := range failed {
		why := f.err.Error()
		if se := (*statusError)(nil); errors.As(f.err, &se) {
			why = se.short()
		}
		s := fmt.Sprintf("%s (%s)", r.boardName(f.to), why)
		if f.late {
			late = append(late, s)
		} else {
			refused = append(refused, s)
		}
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("dkgnet: round %s: %s refused this DTA's posts, so the round may go on without its messages; nothing is stored, rerun the ceremony",
			round, strings.Join(refused, ", "))
	}
	lateNote := ""
	if len(late) > 0 {
		lateNote = fmt.Sprintf("; %s did not take this DTA's posts by then", strings.Join(late, ", "))
	}
	if len(missing) > 0 {
		what := "done notice"
		if round == "hello" || round == "confirm" {
			what = round
		}
		hint := ""
		if slices.ContainsFunc(missing, func(p party) bool { return bytes.Equal(p.key, r.pl.parties[r.me].key) }) {
			hint = fmt.Sprintf(" (%s is this DTA: its own posts did not reach its board; does the session's URL reach the board?)", r.pl.parties[r.me])
		}
		rerun := "rerun the ceremony without it or once it is up"
		if round == "confirm" { // it could compute the key: another try is another draw of it
			rerun = "rerun the ceremony without it (it has seen the key, so a rerun with it would let it draw the key again)"
		}
		return nil, fmt.Errorf("dkgnet: round %s: no %s from %s within %v%s%s; nothing is stored, %s",
			round, what, names(missing), wait, hint, lateNote, rerun)
	}
	if len(late) > 0 {
		return nil, fmt.Errorf("dkgnet: round %s: %s did not take this DTA's posts, so the round may go on without its messages; nothing is stored, rerun the ceremony",
			round, strings.Join(late, ", "))
	}

	// Echo.
	ectx, cancel2 := context.WithTimeout(ctx, r.cfg.RoundTimeout)
	defer cancel2()
	var mu sync.Mutex
	var raws [][]byte
	gotFrom := map[int][][]byte{}
	for k, p := range r.pl.parties {
		// Confirmations need no echo once the own board holds everyone's: a party
		// that gave others another hash only makes them abort, as not confirming
		// would. So a party can stop serving its board as soon as it completes.
		if k == r.me || round == "confirm" {
			continue
		}
		wg.Go(func() {
			got, err := r.get(ectx, p.url+PathRounds+round)
			if err != nil {
				r.log.Warn("dkgnet: echo failed", "round", round, "from", p.String(), "err", err)
				mu.Lock()
				r.unread[k] = append(r.unread[k], round)
				mu.Unlock()
				return
			}
			mu.Lock()
			raws = append(raws, got...)
			gotFrom[k] = got
			mu.Unlock()
		})
	}
	wg.Wait()
	if round != "confirm" {
		r.noteRead(round, r.me, r.board.encodedRound(round))
	}
	for k, got := range gotFrom {
		r.noteRead(round, k, encodeItems(got))
	}
	// The own board's items are checked already; the others' are checked once each
	// (most come from every board).
	by, seen := map[int][]item{}, map[string]bool{}
	for _, it := range r.board.items(round) {
		seen[string(it.raw)] = true
		by[it.party] = append(by[it.party], it)
	}
	for _, raw := range raws {
		if seen[string(raw)] {
			continue
		}
		seen[string(raw)] = true
		it, err := accept(raw)
		if err != nil {
			r.log.Warn("dkgnet: echo: an item fails its checks, ignored", "round", round, "err", err)
			continue
		}
		by[it.party] = append(by[it.party], it)
	}
	for k := range by {
		slices.SortFunc(by[k], func(x, y item) int { return bytes.Compare(x.raw, y.raw) })
		by[k] = by[k][:min(2, len(by[k]))]
	}
	return by, nil
}

// noteRead adds to board k's digest the round read there, as the board encoded it.
func (r *runner) noteRead(round string, k int, encoded []byte) {
	sum := sha256.Sum256(encoded)
	r.read[k] = sha256.Sum256(slices.Concat(r.read[k][:], []byte(round), sum[:]))
}

// readDigests names each board's digest of the rounds read there (noteRead), the
// first 8 bytes in hex, and the rounds it could not be read in: "DTA 1 (URL)
// 0123456789abcdef, DTA 2 (URL) … (not read in rounds deal), …".
func (r *runner) readDigests() string {
	var out []string
	for k, p := range r.pl.parties {
		s := fmt.Sprintf("%s %x", p, r.read[k][:8])
		if len(r.unread[k]) > 0 {
			s += fmt.Sprintf(" (not read in rounds %s)", strings.Join(r.unread[k], ", "))
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

// encodeItems encodes items as a board serves a round (Board.encodedRound).
func encodeItems(raws [][]byte) []byte {
	var out []byte
	for _, raw := range raws {
		out = binary.BigEndian.AppendUint32(out, uint32(len(raw)))
		out = append(out, raw...)
	}
	return out
}

// deliver posts this party's messages of a round to the board of party to, then its
// notice n once the board has taken every message; it stops at the first post that
// fails (refused for good, or ctx ended).
func (r *runner) deliver(ctx context.Context, round string, to int, msgs [][]byte, n *notice) error {
	url := r.pl.parties[to].url
	for k, m := range msgs {
		if r.cfg.skipPost != nil && r.cfg.skipPost(round, to, k) {
			continue
		}
		if err := r.post(ctx, url+PathMessages, m); err != nil {
			return err
		}
	}
	return r.post(ctx, url+PathNotices, n.bytes())
}

// boardName names the board of party k in an error.
func (r *runner) boardName(k int) string {
	p := r.pl.parties[k]
	if k == r.me {
		return fmt.Sprintf("this DTA's own board (%s)", p.url)
	}
	return "the board of " + p.String()
}

// A statusError is a board's answer other than 2xx.
type statusError struct {
	what          string // method and URL
	text          string // resp.Status
	code, message string // httpx's JSON error, if any
}

func (e *statusError) Error() string { return "dkgnet: " + e.what + ": " + e.short() }

// short is the answer without the request.
func (e *statusError) short() string {
	if e.message == "" {
		return e.text
	}
	return e.text + ": " + e.message
}

// retryable reports whether a board's answer may change: not ready, busy, still open,
// or a proxy in front of the board that could not reach it (502, 504).
func retryable(status int, code string) bool {
	switch status {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	}
	return status == http.StatusConflict && code == "not_ready"
}

// do sends a request until it succeeds, fails for good or ctx ends; it returns the body
// of a 2xx answer, at most limit bytes.
func (r *runner) do(ctx context.Context, method, url string, body []byte, limit int) ([]byte, error) {
	delay := 20 * time.Millisecond
	for {
		var rd io.Reader = http.NoBody
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, url, rd)
		if err != nil {
			return nil, fmt.Errorf("dkgnet: %w", err)
		}
		if body != nil {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := r.client.Do(req)
		if err == nil {
			data, rerr := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
			resp.Body.Close()
			var e struct{ Code, Message string }
			switch {
			case rerr != nil:
				err = rerr
			case resp.StatusCode/100 == 2 && len(data) > limit:
				return nil, fmt.Errorf("dkgnet: %s %s: answer larger than %d bytes", method, url, limit)
			case resp.StatusCode/100 == 2:
				return data, nil
			default:
				_ = json.Unmarshal(data, &e)
				err = &statusError{what: method + " " + url, text: resp.Status, code: e.Code, message: e.Message}
				if !retryable(resp.StatusCode, e.Code) {
					return nil, err
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

func (r *runner) post(ctx context.Context, url string, body []byte) error {
	_, err := r.do(ctx, http.MethodPost, url, body, 4096)
	return err
}

// get reads a round from a board: u32 length ‖ item, repeated.
func (r *runner) get(ctx context.Context, url string) ([][]byte, error) {
	limit := 2*len(r.pl.parties)*(4+max(r.pl.maxMsg, noticeSize)) + 16
	data, err := r.do(ctx, http.MethodGet, url, nil, limit)
	if err != nil {
		return nil, err
	}
	return splitItems(data)
}

// splitItems decodes a GET answer.
func splitItems(data []byte) ([][]byte, error) {
	var out [][]byte
	for len(data) > 0 {
		if len(data) < 4 {
			return nil, errors.New("dkgnet: truncated round answer")
		}
		n := binary.BigEndian.Uint32(data)
		data = data[4:]
		if uint64(n) > uint64(len(data)) {
			return nil, errors.New("dkgnet: truncated round answer")
		}
		out = append(out, data[:n])
		data = data[n:]
	}
	return out, nil
}
