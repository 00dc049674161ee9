package client

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// maxPermitSlots is the most permit slots one ticket may ask for (internal/ticket).
const maxPermitSlots = 366

// Enroll redeems a one-time enrolment code at the auth server, collects the client
// key shares and time permits from every DTA of the pinned bundle in parallel,
// checks every share (DLEQ proof, log entry, signed promise), combines them, takes
// the PIN out and stores the token, permits and receipts in the token file. A device
// (device true) enrols without a PIN: pin must then be empty. Nothing is stored
// unless every DTA answered with valid shares (in threshold mode: t of them, whose
// first t valid shares are combined; see collect).
//
// The PIN must meet the bundle's policy (PINPolicy: at least that many characters of
// its Unicode NFKC form; ErrPINPolicy otherwise, before anything is sent); the client
// uses that normal form at every login.
//
// A directory that holds an enrolment is not replaced unless the client was opened
// WithReplace (ErrEnrolled). An enrolment that fails part way (a DTA unreachable, an
// answer lost) can be retried with the same code: the client keeps its seal keys in
// PendingFile, the registrar answers the same keys again with the same tickets (until
// they expire, an hour by default; a code it refused before using it stays valid until
// the code expires), and every DTA answers a ticket it has served from its records.
//
// The code never leaves the client: Enroll makes two fresh X25519 keys, one for its
// client shares and one for its permits, proves knowledge of the code bound to both
// (wire.NewRedeemRequest), and checks that the registrar's tickets name them; every
// DTA seals the shares to them. What a TLS interceptor sees is useless to it, and one
// that replaces a key is detected: ErrPossibleInterception. Once the client holds its
// client shares, the key that opens them is erased with PendingFile: the token file
// keeps the permits' key only, so that it opens nothing recorded at enrolment.
//
// A registrar that works under a successor of the pinned bundle (the DTAs reshared
// the master key), or DTA shares that fail against the pinned commitments, make Enroll
// fetch the server's bundle and adopt it if it is a successor (ErrBundleNotSuccessor
// otherwise), then go on under it.
func (c *Client) Enroll(ctx context.Context, serverURL, code string, pin []byte, device bool) error {
	switch {
	case device && len(pin) > 0:
		return fmt.Errorf("client: a device enrols without a PIN")
	case !device && len(pin) == 0:
		return fmt.Errorf("client: a PIN is needed (or enrol as a device)")
	}
	if st := c.Status(); st.Enrolled && !c.o.replace {
		return &EnrolledError{ID: st.ID, Domain: st.Domain}
	}
	if !device {
		var err error
		if pin, err = c.choosePIN(pin); err != nil {
			return err
		}
		defer clear(pin)
	}
	u, err := c.o.serverURL(serverURL, "/v1/enrol")
	if err != nil {
		return err
	}
	keys, err := c.pendingFor(code)
	if err != nil {
		return err
	}
	req, err := wire.NewRedeemRequest(code, c.domain.Name, keys.clientPub, keys.permitPub)
	if err != nil {
		return fmt.Errorf("client: the enrolment code: %w", err)
	}
	norm, _ := wire.NormalizeCode(code) // NewRedeemRequest took it
	_, codeKey := wire.CodeSecrets(norm)
	var pkg wire.EnrolPackage
	if _, err := postJSON(ctx, c.o.serverHTTP, u, "", req, &pkg); err != nil {
		var se *statusError
		if errors.As(err, &se) && se.body.Code == "code_proof_failed" {
			return fmt.Errorf("%w (the server received another key than this client sent; the code is still valid)", ErrPossibleInterception)
		}
		if errors.As(err, &se) && se.body.Code == "bad_json" && strings.Contains(se.body.Message, `"permit_key"`) {
			// No fallback to one key for both: a forged answer would then force the client
			// to keep the key that opens its client shares.
			return errors.New("client: the auth server does not know permit_key: it runs an older version than this client; upgrade the auth server first (the code is still valid)")
		}
		// The pending seal key stays, even on "unknown_code": that answer is not
		// authenticated, and an interceptor that redeemed the code for this key and
		// answered so would otherwise leave no key to finish the enrolment with later.
		return serverError(err)
	}
	switch {
	case len(pkg.MAC) == 0:
		return fmt.Errorf("%w (the enrolment package has no MAC: the server runs an older version than this client, or something between them removed it)", ErrPossibleInterception)
	case !hmac.Equal(pkg.MAC, wire.PackageMAC(codeKey, &pkg, keys.clientPub, keys.permitPub)):
		return fmt.Errorf("%w (the enrolment package is not the registrar's answer to this code)", ErrPossibleInterception)
	}
	id, err := c.checkPackage(&pkg, device, keys)
	if errors.Is(err, ErrBundleFingerprint) {
		// The registrar works under another bundle: a successor (after a resharing) is
		// adopted, anything else refused (successor.go).
		if adopted, aerr := c.adoptServerBundle(ctx, serverURL); aerr != nil {
			return errors.Join(err, aerr)
		} else if adopted {
			id, err = c.checkPackage(&pkg, device, keys)
		}
	}
	if err != nil {
		return err
	}
	_, permitPriv := keys.permit()
	jobs := []job{{kind: wire.KindClient, ticket: pkg.ClientTicket, key: keys.clientPriv}}
	if c.domain.PermitPeriod != 0 {
		jobs = append(jobs, job{kind: wire.KindPermit, ticket: pkg.PermitTicket, first: pkg.FirstSlot, last: pkg.LastSlot, key: permitPriv})
	}
	got, b, err := c.collectAdopting(ctx, serverURL, id, jobs)
	if err != nil {
		return err
	}
	sA, err := got.combine(b.SharingMode(), wire.KindClient, 0)
	if err != nil {
		return err
	}
	tk := pairing.ExtractPIN(c.domain.Name, id, sA, pin)
	// The bundle pinned now, which collectAdopting may have replaced by a successor
	// after the shares were checked against b (a successor keeps the master key, so
	// the token holds under both); the directory opens only with the pinned one.
	// The token file keeps the permits' key only: the client shares' key goes with the
	// pending file, so that whoever recorded the sealed client shares and later gets
	// the token file cannot open them (sA and TK would test PINs offline).
	st := &tokenState{Version: tokenVersion, BundleFingerprint: c.Fingerprint(), Domain: pkg.Domain, ID: pkg.ID,
		IDHash: hex.EncodeToString(id[:]), Device: device, NotAfter: pkg.NotAfter, Token: tk.Bytes(), SealKey: permitPriv,
		Permits: map[uint64][]byte{}, Receipts: got.receipts}
	if err := got.addPermits(b.SharingMode(), st.Permits); err != nil {
		return err
	}
	if err := saveToken(c.st, st); err != nil {
		return err
	}
	c.mu.Lock()
	c.state, c.id, c.token = st, id, tk
	c.mu.Unlock()
	if err := c.dropPending(); err != nil {
		return fmt.Errorf("client: enrolled, but %s, which holds the key that opens the client shares, could not be removed: remove it by hand: %w", PendingFile, err)
	}
	return nil
}

// checkPackage checks an enrolment package against the pinned bundle and the client's
// seal keys, and returns the idhash it names.
func (c *Client) checkPackage(p *wire.EnrolPackage, device bool, keys *sealKeys) (pairing.IDHash, error) {
	bad := func(format string, a ...any) (pairing.IDHash, error) {
		return pairing.IDHash{}, fmt.Errorf("client: the enrolment package from the server "+format, a...)
	}
	if p.Domain != c.domain.Name {
		return bad("is for domain %q, the pinned bundle for %q", p.Domain, c.domain.Name)
	}
	if _, fp := c.pinned(); normalizeFingerprint(p.BundleFingerprint) != fp {
		return pairing.IDHash{}, fmt.Errorf("%w: the registrar works under bundle %.16s…, this client pinned %.16s…",
			ErrBundleFingerprint, p.BundleFingerprint, fp)
	}
	id, err := pairing.NewIDHash(p.Domain, p.ID, p.Salt)
	if err != nil {
		return bad("has a bad salt: %v", err)
	}
	if hex.EncodeToString(id[:]) != p.IDHash {
		return bad("has an idhash that does not match its ID and salt")
	}
	switch {
	case p.Device && !device:
		return pairing.IDHash{}, fmt.Errorf("%w: it enrols a device, which has no PIN; enrol as a device with the same code, which stays valid for this client", ErrEnrolmentKind)
	case !p.Device && device:
		return pairing.IDHash{}, fmt.Errorf("%w: it enrols an identity with a PIN, not a device; enrol with a PIN and the same code, which stays valid for this client", ErrEnrolmentKind)
	}
	if p.NotAfter != nil && !c.o.now().Before(*p.NotAfter) {
		return pairing.IDHash{}, ErrIdentityExpired
	}
	if err := c.checkTicket(p.ClientTicket, ticket.KindClient, id, keys.clientPub, 0, 0); err != nil {
		return pairing.IDHash{}, err
	}
	if c.domain.PermitPeriod != 0 {
		if err := checkSlots(p.PermitTicket, p.FirstSlot, p.LastSlot); err != nil {
			return bad("%v", err)
		}
		permitPub, _ := keys.permit()
		if err := c.checkTicket(p.PermitTicket, ticket.KindPermit, id, permitPub, p.FirstSlot, p.LastSlot); err != nil {
			return pairing.IDHash{}, err
		}
	}
	return id, nil
}

// checkTicket checks that a ticket from the server is signed by the bundle's registrar
// for this identity (and, for permits, these slots), and names the client's seal key:
// tickets for another key mean that someone between client and server replaced it.
func (c *Client) checkTicket(token, kind string, id pairing.IDHash, sealPub []byte, first, last uint64) error {
	tk, err := ticket.Verify(token, c.pinnedBundle().RegistrarPublicKey(), c.domain.Name, kind, c.o.now())
	if err != nil {
		return fmt.Errorf("client: the server's %s ticket: %w", kind, err)
	}
	if tk.IDHash != hex.EncodeToString(id[:]) || (kind == ticket.KindPermit && (tk.FirstSlot != first || tk.LastSlot != last)) {
		return fmt.Errorf("client: the server's %s ticket is for another identity or other slots", kind)
	}
	if tk.SealKey != hex.EncodeToString(sealPub) {
		return fmt.Errorf("%w (the registrar's %s ticket names another key than this client's)", ErrPossibleInterception, kind)
	}
	return nil
}

func checkSlots(ticket string, first, last uint64) error {
	if ticket == "" || last < first || last-first >= maxPermitSlots {
		return fmt.Errorf("has no usable permit ticket (slots %d..%d)", first, last)
	}
	return nil
}

// RefreshPermits asks the auth server (with an access token from Login) for a permit
// ticket for the next days permit periods (0: the server's default for this
// identity), fetches the permit shares from every DTA,
// checks and combines them and stores them. Permits of slots before the previous one
// are dropped. Once every permit has expired there is no way to get an access token:
// use RenewPermits. Both adopt a successor of the pinned bundle that the server serves
// (after the DTAs reshared the master key; see storePermits).
func (c *Client) RefreshPermits(ctx context.Context, serverURL, accessToken string, days int) error {
	id, err := c.permitIdentity()
	if err != nil {
		return err
	}
	u, err := c.o.serverURL(serverURL, "/v1/permits")
	if err != nil {
		return err
	}
	var pt wire.PermitTicket
	if _, err := postJSON(ctx, c.o.serverHTTP, u, accessToken, wire.PermitRequest{Days: days}, &pt); err != nil {
		var se *statusError
		if errors.As(err, &se) && se.body.Code == "identity_not_allowed" {
			c.mu.Lock()
			na := c.state.NotAfter
			c.mu.Unlock()
			if na != nil && !c.o.now().Before(*na) {
				return ErrIdentityExpired
			}
			return fmt.Errorf("%w (the server refuses permits: %s)", ErrRevoked, se.body.Message)
		}
		return serverError(err)
	}
	return c.storePermits(ctx, serverURL, id, &pt)
}

// RenewPermits gets permits for the next days permit periods (0: the server's default
// for this identity) without an access token, e.g. after every permit expired: it
// runs a renewal with the server, the same mutual login but proving only token and
// PIN, without a permit (wire.PurposeRenew). It checks the server's key confirmation
// (ErrServerNotAuthentic) and channel binding (ErrPossibleInterception) like Login,
// and only then uses the permit ticket the server answers with: it fetches the permit
// shares from every DTA, checks and combines them and stores them as RefreshPermits
// does. A wrong PIN counts toward the lockout as in Login, with the same errors.
// Devices pass a nil pin.
func (c *Client) RenewPermits(ctx context.Context, serverURL string, pin []byte, days int) error {
	id, err := c.permitIdentity()
	if err != nil {
		return err
	}
	c.mu.Lock()
	st, tk := c.state, c.token
	c.mu.Unlock()
	if st.Device && len(pin) > 0 {
		return fmt.Errorf("client: this identity is a device: it renews without a PIN")
	}
	if st.NotAfter != nil && !c.o.now().Before(*st.NotAfter) {
		return ErrIdentityExpired
	}
	if days < 0 || days > maxPermitDays {
		return fmt.Errorf("client: days must be 0 to %d", maxPermitDays)
	}
	// A' = A: the renewal proves token and PIN without a permit, in slot 0.
	pc := &pairing.Client{Domain: pairing.Domain{Name: c.domain.Name}, IDHash: id, Token: tk}
	fr, _, err := c.exchange(ctx, serverURL, pc, pin, wire.StartRequest{Purpose: wire.PurposeRenew, Days: days}, "")
	if err != nil {
		return err
	}
	if fr.ID != st.ID {
		return fmt.Errorf("client: the server renewed %q, this token is %q", fr.ID, st.ID)
	}
	if fr.Permit == nil {
		return fmt.Errorf("client: the server's renewal carries no permit ticket")
	}
	return c.storePermits(ctx, serverURL, id, fr.Permit)
}

// maxPermitDays is the most permit periods the server hands out at once.
const maxPermitDays = 30

// permitIdentity returns the enrolled identity, refusing domains without permits.
func (c *Client) permitIdentity() (pairing.IDHash, error) {
	c.mu.Lock()
	enrolled, id := c.state != nil, c.id
	c.mu.Unlock()
	if !enrolled {
		return id, ErrNotEnrolled
	}
	if c.domain.PermitPeriod == 0 {
		return id, fmt.Errorf("client: domain %s does not use time permits", c.domain.Name)
	}
	return id, nil
}

// storePermits presents a permit ticket from the server at every DTA, checks and
// combines the shares, and stores the permits, dropping those of slots before the
// previous one. First, at most once per BundleCheckInterval, and whenever a share's
// DLEQ proof fails against the pinned bundle, it looks for a successor of the pinned
// bundle at serverURL (dailyBundleCheck, collectAdopting).
func (c *Client) storePermits(ctx context.Context, serverURL string, id pairing.IDHash, pt *wire.PermitTicket) error {
	if err := checkSlots(pt.Ticket, pt.FirstSlot, pt.LastSlot); err != nil {
		return fmt.Errorf("client: the server's permit ticket %v", err)
	}
	c.mu.Lock()
	sealPriv := c.state.SealKey
	c.mu.Unlock()
	sealPub, err := wire.SealPublicKey(sealPriv)
	if err != nil {
		return fmt.Errorf("client: the token file's seal key: %w", err)
	}
	if err := c.checkTicket(pt.Ticket, ticket.KindPermit, id, sealPub, pt.FirstSlot, pt.LastSlot); err != nil {
		return err
	}
	if err := c.dailyBundleCheck(ctx, serverURL); err != nil {
		return err
	}
	got, b, err := c.collectAdopting(ctx, serverURL, id, []job{{kind: wire.KindPermit, ticket: pt.Ticket, first: pt.FirstSlot, last: pt.LastSlot, key: sealPriv}})
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == nil || c.id != id {
		return fmt.Errorf("client: the identity changed while permits were fetched")
	}
	st := *c.state
	st.Permits = map[uint64][]byte{}
	cur := c.domain.Slot(c.o.now())
	for k, v := range c.state.Permits {
		if k+1 >= cur {
			st.Permits[k] = v
		}
	}
	if err := got.addPermits(b.SharingMode(), st.Permits); err != nil {
		return err
	}
	st.Receipts = boundReceipts(append(slices.Clone(c.state.Receipts), got.receipts...))
	if err := saveToken(c.st, &st); err != nil {
		return err
	}
	c.state = &st
	return nil
}

// maxReceipts bounds the receipts kept in the token file (about 0.9 KB each): every
// permit fetch adds one per DTA and slot, and a token file past maxTokenFile would not
// open again.
const maxReceipts = 2048

// boundReceipts keeps the enrolment's receipts and the newest permit receipts, at most
// maxReceipts in all; rs is in the order the receipts came, oldest first.
func boundReceipts(rs []Receipt) []Receipt {
	if len(rs) <= maxReceipts {
		return rs
	}
	drop := len(rs) - maxReceipts // the oldest permit receipts
	out := make([]Receipt, 0, maxReceipts)
	for _, r := range rs {
		if r.Kind == wire.KindPermit && drop > 0 {
			drop--
			continue
		}
		out = append(out, r)
	}
	return out
}

// A job is one ticket to present at every DTA.
type job struct {
	kind        string // wire.KindClient or KindPermit
	ticket      string
	first, last uint64 // permit slots
	key         []byte // the X25519 private key the ticket's shares are sealed to
}

func (j job) path() string { return "/v1/shares/" + j.kind }

// slotKey names a set of shares to combine.
type slotKey struct {
	kind string
	slot uint64
}

// collected holds the verified shares of all DTAs.
type collected struct {
	indices  map[slotKey][]uint32
	shares   map[slotKey][]*pairing.G1
	receipts []Receipt
	// dleqFault: t valid shares sufficed, but a DTA's proof failed against the pinned
	// bundle (threshold mode).
	dleqFault bool
}

// collect presents every job's ticket at every DTA in parallel and verifies the
// answers.
//
// In additive mode it fails unless every DTA answered every job with valid shares,
// naming the DTAs that did not. In threshold mode (t of n) it stops as soon as t DTAs
// answered every job with valid shares, cancelling the requests still running, and
// combines the first t valid shares of each slot; it fails with a *QuorumError
// naming every DTA that failed, and why, when fewer than t answered a job validly.
// The DTAs that failed although t others sufficed are reported to WithDTAFaults.
func (c *Client) collect(ctx context.Context, b *bundle.Bundle, id pairing.IDHash, jobs []job) (*collected, error) {
	type result struct {
		dta    int
		job    int
		seq    int // arrival order
		shares []checkedShare
		err    error
	}
	n := len(b.DTAs)
	need := n
	threshold := b.SharingMode() == pairing.Threshold
	if threshold {
		need = b.Threshold
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan result, n*len(jobs))
	var wg sync.WaitGroup
	for i := range b.DTAs {
		for j := range jobs {
			wg.Go(func() {
				sh, err := c.fetch(fctx, &b.DTAs[i], id, jobs[j])
				ch <- result{dta: i, job: j, shares: sh, err: err}
			})
		}
	}
	// Every job needs need valid answers; once all have them, the rest is cancelled.
	valid := make([]int, len(jobs))
	complete := 0
	var results []result
	for k := 0; k < n*len(jobs) && complete < len(jobs); k++ {
		r := <-ch
		r.seq = k
		results = append(results, r)
		if r.err == nil {
			if valid[r.job]++; valid[r.job] == need {
				complete++
			}
		}
	}
	cancel()
	wg.Wait() // the cancelled requests return at once
	slices.SortFunc(results, func(a, b result) int {
		if a.dta != b.dta {
			return a.dta - b.dta
		}
		return a.job - b.job
	})
	// used[r] marks the first need valid answers of each job (by arrival).
	used := map[[2]int]bool{}
	byArrival := slices.Clone(results)
	slices.SortFunc(byArrival, func(a, b result) int { return a.seq - b.seq })
	taken := make([]int, len(jobs))
	for _, r := range byArrival {
		if r.err == nil && taken[r.job] < need {
			taken[r.job]++
			used[[2]int{r.dta, r.job}] = true
		}
	}

	got := &collected{indices: map[slotKey][]uint32{}, shares: map[slotKey][]*pairing.G1{}}
	var (
		badIdx  []uint32
		badErrs []error
		dleqBad []uint32
		others  []error
		failed  = map[uint32]bool{}
	)
	for _, r := range results {
		d := &b.DTAs[r.dta]
		var bad *badAnswer
		switch {
		case r.err == nil:
			for _, s := range r.shares {
				if used[[2]int{r.dta, r.job}] {
					k := slotKey{jobs[r.job].kind, s.slot}
					got.indices[k] = append(got.indices[k], d.Index)
					got.shares[k] = append(got.shares[k], s.share)
				}
				got.receipts = append(got.receipts, s.receipt)
			}
		case failed[d.Index]:
			// one error per DTA is enough
		case errors.As(r.err, &bad):
			failed[d.Index] = true
			badIdx = append(badIdx, d.Index)
			if bad.dleq {
				dleqBad = append(dleqBad, d.Index)
			} else {
				badErrs = append(badErrs, fmt.Errorf("DTA %d: %w", d.Index, bad.err))
			}
		default:
			failed[d.Index] = true
			others = append(others, r.err)
		}
	}
	var errs []error
	if badIdx != nil {
		if dleqBad != nil {
			badErrs = append([]error{&pairing.ShareError{Indices: dleqBad}}, badErrs...)
		}
		errs = append(errs, &BadShareError{Indices: badIdx, Err: errors.Join(badErrs...)})
	}
	errs = append(errs, others...)
	var err error
	switch len(errs) {
	case 0:
	case 1:
		err = errs[0]
	default:
		err = errors.Join(errs...)
	}
	if !threshold {
		if err != nil {
			return nil, err
		}
		return got, nil
	}
	for j := range jobs {
		if valid[j] < need {
			return nil, &QuorumError{Kind: jobs[j].kind, Valid: valid[j], Need: need, N: n, Failed: sortedIndices(failed), Err: err}
		}
	}
	if err != nil && c.o.dtaFaults != nil {
		c.o.dtaFaults(err)
	}
	got.dleqFault = dleqFailed(err)
	return got, nil
}

func sortedIndices(m map[uint32]bool) []uint32 {
	out := make([]uint32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (g *collected) combine(mode pairing.Mode, kind string, slot uint64) (*pairing.G1, error) {
	k := slotKey{kind, slot}
	p, err := pairing.Combine(mode, g.indices[k], g.shares[k])
	if err != nil {
		return nil, fmt.Errorf("client: combining %s shares: %w", kind, err)
	}
	return p, nil
}

func (g *collected) addPermits(mode pairing.Mode, into map[uint64][]byte) error {
	for k := range g.indices {
		if k.kind != wire.KindPermit {
			continue
		}
		p, err := g.combine(mode, k.kind, k.slot)
		if err != nil {
			return err
		}
		into[k.slot] = p.Bytes()
	}
	return nil
}

// A checkedShare is a share whose proof, entry and promise verified.
type checkedShare struct {
	slot    uint64
	share   *pairing.G1
	receipt Receipt
}

// A badAnswer is a DTA answer that fails verification; dleq marks a failed proof.
type badAnswer struct {
	err  error
	dleq bool
}

func (e *badAnswer) Error() string { return e.err.Error() }

func badf(format string, a ...any) error { return &badAnswer{err: fmt.Errorf(format, a...)} }

// fetch presents one ticket at one DTA and verifies its answer.
func (c *Client) fetch(ctx context.Context, d *bundle.DTA, id pairing.IDHash, j job) ([]checkedShare, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.dtaTimeout)
	defer cancel()
	u := d.URL + j.path()
	var resp wire.DTAResponse
	_, err := postJSON(ctx, c.o.dtaHTTP, u, "", wire.DTARequest{Ticket: j.ticket}, &resp)
	var se *statusError
	var me *malformedError
	switch {
	case err == nil:
	case errors.As(err, &me):
		return nil, &badAnswer{err: me}
	case errors.As(err, &se) && se.body.Code == "revoked":
		return nil, fmt.Errorf("DTA %d: %w", d.Index, ErrRevoked)
	case errors.As(err, &se) && se.status < 500 && se.status != 429: // Too Many Requests
		return nil, se.api(fmt.Sprintf("DTA %d (%s)", d.Index, d.URL))
	default:
		return nil, &DTAUnreachableError{Index: d.Index, URL: d.URL, Err: err}
	}
	return c.check(d, id, j, &resp)
}

// check verifies a DTA's answer to job j: one sealed share per slot asked that opens
// with the client's seal key, each with a log entry that describes exactly this
// issuance, the DTA's signed promise for that entry, and a DLEQ proof against the
// DTA's commitment. The opened shares and proofs are kept in memory only: a stored
// share would let a thief with the token test PINs offline.
func (c *Client) check(d *bundle.DTA, id pairing.IDHash, j job, resp *wire.DTAResponse) ([]checkedShare, error) {
	if resp.DTA != d.Index {
		return nil, badf("answered as DTA %d", resp.DTA)
	}
	want := uint64(1)
	if j.kind == wire.KindPermit {
		want = j.last - j.first + 1
	}
	if uint64(len(resp.Shares)) != want {
		return nil, badf("sent %d shares, want %d", len(resp.Shares), want)
	}
	pub, err := d.PublicKey()
	if err != nil {
		return nil, err
	}
	commitment, err := d.CommitmentPoint()
	if err != nil {
		return nil, err
	}
	ticketHash := sha256.Sum256([]byte(j.ticket))
	subject := wire.Subject(id)
	out := make([]checkedShare, 0, len(resp.Shares))
	for i, s := range resp.Shares {
		slot := uint64(0)
		if j.kind == wire.KindPermit {
			slot = j.first + uint64(i)
		}
		if s.Slot != slot {
			return nil, badf("share %d is for slot %d, want %d", i, s.Slot, slot)
		}
		plain, err := wire.Open(j.key, &wire.SealContext{Domain: c.domain.Name, DTA: d.Index, Kind: j.kind, Slot: slot, TicketSHA256: ticketHash}, s.Sealed)
		if err != nil || len(plain) != pairing.G1Size+pairing.DLEQProofSize {
			return nil, badf("the sealed share of slot %d does not open with this client's key", slot)
		}
		share, err := pairing.DecodeG1(plain[:pairing.G1Size])
		if err != nil {
			return nil, &badAnswer{err: fmt.Errorf("share of slot %d: %w", slot, err), dleq: true}
		}
		proof, err := pairing.DecodeDLEQProof(plain[pairing.G1Size:])
		if err != nil {
			return nil, &badAnswer{err: fmt.Errorf("proof of slot %d: %w", slot, err), dleq: true}
		}
		base := pairing.IdentityPoint(id)
		if j.kind == wire.KindPermit {
			base = pairing.PermitPoint(id, slot, c.domain.PermitPeriod)
		}
		issued := []pairing.IssuedShare{{Index: d.Index, Commitment: commitment, Share: share, Proof: proof}}
		sctx := pairing.ShareContext(c.domain.Name, d.Index, j.kind, slot)
		if err := pairing.VerifyShares(base, issued, func(uint32) []byte { return sctx }); err != nil {
			return nil, &badAnswer{err: err, dleq: true}
		}
		e, err := wire.ParseEntry(s.Entry)
		if err != nil {
			return nil, badf("log entry of slot %d: %v", slot, err)
		}
		if e.DTA != d.Index || e.Domain != c.domain.Name || e.Kind != j.kind || e.Subject != subject ||
			e.Slot != slot || e.SealedSHA256 != sha256Hex(s.Sealed) || e.TicketSHA256 != hex.EncodeToString(ticketHash[:]) {
			return nil, badf("the log entry of slot %d does not describe this issuance", slot)
		}
		if s.Promise == nil || s.Promise.Origin != d.LogOrigin {
			return nil, badf("no promise from log %q for slot %d", d.LogOrigin, slot)
		}
		if err := s.Promise.Verify(pub, s.Entry); err != nil {
			return nil, badf("promise of slot %d: %v", slot, err)
		}
		out = append(out, checkedShare{slot: slot, share: share,
			receipt: Receipt{DTA: d.Index, Kind: j.kind, Slot: slot, Entry: s.Entry, Promise: s.Promise, Received: time.Now().UTC().Truncate(time.Second)}})
	}
	return out, nil
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
