package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"crypto/ed25519"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// SecretServerKey is the name under which the caller of Provision stores sQ.Bytes() in
// its keystore.
const SecretServerKey = "server-key"

// dtaTimeout bounds one request to one DTA.
const dtaTimeout = 15 * time.Second

// A DTAError names the DTAs that failed during provisioning or revocation. In a
// threshold domain, Need is t and Valid the number of valid shares provisioning got
// (fewer than t, or it would have succeeded); both are 0 in additive mode.
type DTAError struct {
	Failed      map[uint32]error // by DTA index
	Valid, Need int
}

func (e *DTAError) Error() string {
	var b strings.Builder
	b.WriteString("server: DTA failures:")
	if e.Need > 0 {
		fmt.Fprintf(&b, " only %d valid shares, %d needed;", e.Valid, e.Need)
	}
	for _, idx := range sortedKeys(e.Failed) {
		fmt.Fprintf(&b, " DTA %d: %v;", idx, e.Failed[idx])
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Provision fetches the server key share s_i·Q from the DTAs of the bundle (in
// parallel, each request with a registrar-signed server ticket naming a fresh HPKE key
// and a timeout), opens each sealed share, checks it against the DTA's commitment C_i
// (e(C_i, Q) = e(P1, s_i·Q)) and combines them into sQ: in additive mode the shares of
// every DTA; in threshold mode (t of n) the first t valid shares, by Lagrange
// interpolation at 0, the requests still running then being cancelled. A *DTAError
// names every DTA that could not be reached or whose share is bad: in additive mode
// when there is any, in threshold mode when fewer than t shares are valid (nothing is
// combined then). ProvisionReport also says which DTAs failed when t others sufficed.
// The caller stores sQ.Bytes() under SecretServerKey; sQ is the server's secret and
// must never be logged.
func Provision(ctx context.Context, b *bundle.Bundle, registrarKey ed25519.PrivateKey, client *http.Client) (*pairing.G2, error) {
	sQ, _, err := ProvisionReport(ctx, b, registrarKey, client)
	return sQ, err
}

// A Provisioned reports where a provisioned sQ came from.
type Provisioned struct {
	Used   []uint32         // the DTAs whose shares were combined, in order
	Failed map[uint32]error // DTAs that failed although the others sufficed (threshold mode)
	// Logged is, for each DTA of Used, the index of the server-key entry in its log that
	// records this issuance (checked against the DTA's signed promise): what `polyroot
	// audit` lists among the log's server shares.
	Logged map[uint32]uint64
}

// ProvisionReport is Provision, and also reports which DTAs' shares were combined and,
// in threshold mode, which DTAs failed although t others sufficed (unreachable or a
// bad share: report those to their operators). DTAs whose requests were cancelled
// once t shares were in are in neither list.
func ProvisionReport(ctx context.Context, b *bundle.Bundle, registrarKey ed25519.PrivateKey, client *http.Client) (*pairing.G2, *Provisioned, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if !bytes.Equal(registrarKey.Public().(ed25519.PublicKey), b.RegistrarPublicKey()) {
		return nil, nil, errors.New("server: the registrar key is not the bundle's registrar key")
	}
	pub, priv, err := wire.NewSealKey()
	if err != nil {
		return nil, nil, err
	}
	mode := b.SharingMode()
	need := len(b.DTAs)
	if mode == pairing.Threshold {
		need = b.Threshold
	}
	type result struct {
		index  uint32
		share  *pairing.G2
		logged uint64
		err    error
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan result, len(b.DTAs))
	var wg sync.WaitGroup
	for i := range b.DTAs {
		wg.Go(func() {
			d := &b.DTAs[i]
			share, logged, err := fetchServerShare(fctx, client, b, d, registrarKey, pub, priv)
			ch <- result{d.Index, share, logged, err}
		})
	}
	failed := map[uint32]error{}
	logged := map[uint32]uint64{}
	var indices []uint32
	var shares []*pairing.G2
	for range b.DTAs {
		r := <-ch
		if r.err != nil {
			failed[r.index] = r.err
			continue
		}
		indices, shares = append(indices, r.index), append(shares, r.share)
		logged[r.index] = r.logged
		if len(shares) == need {
			break
		}
	}
	cancel()
	wg.Wait()
	switch {
	case mode == pairing.Threshold && len(shares) < need:
		return nil, nil, &DTAError{Failed: failed, Valid: len(shares), Need: need}
	case mode != pairing.Threshold && len(failed) > 0:
		return nil, nil, &DTAError{Failed: failed}
	}
	sQ, err := pairing.Combine(mode, indices, shares)
	if err != nil {
		return nil, nil, err
	}
	rep := &Provisioned{Used: indices, Logged: logged}
	if len(failed) > 0 {
		rep.Failed = failed
	}
	return sQ, rep, nil
}

// fetchServerShare gets, opens and checks DTA d's server-key share, and returns it with
// the index of the log entry the DTA promised for it.
func fetchServerShare(ctx context.Context, client *http.Client, b *bundle.Bundle, d *bundle.DTA,
	registrar ed25519.PrivateKey, pub, priv []byte) (*pairing.G2, uint64, error) {
	tk, err := ticket.Sign(ticket.Ticket{Domain: b.Domain, Kind: ticket.KindServer,
		SealKey: hex.EncodeToString(pub), NotAfter: time.Now().Add(10 * time.Minute)}, registrar)
	if err != nil {
		return nil, 0, err
	}
	resp, err := postDTA(ctx, client, d.URL+"/v1/shares/server", tk)
	if err != nil {
		return nil, 0, err
	}
	if resp.DTA != d.Index || len(resp.Shares) != 1 || len(resp.Shares[0].Sealed) == 0 || resp.Shares[0].Slot != 0 {
		return nil, 0, errors.New("malformed answer")
	}
	sh := &resp.Shares[0]
	ticketHash := sha256.Sum256([]byte(tk))
	raw, err := wire.Open(priv, &wire.SealContext{Domain: b.Domain, DTA: d.Index, Kind: wire.KindServer, TicketSHA256: ticketHash}, sh.Sealed)
	if err != nil {
		return nil, 0, errors.New("the sealed share does not open")
	}
	share, err := pairing.DecodeG2(raw)
	if err != nil {
		return nil, 0, errors.New("bad share: not a valid G2 point")
	}
	c, err := d.CommitmentPoint()
	if err != nil {
		return nil, 0, err
	}
	if err := pairing.VerifyServerShare(c, share); err != nil {
		return nil, 0, errors.New("bad share: it does not match the DTA's commitment in the bundle")
	}
	// The issuance must be in the DTA's transparency log, as every share is: an entry
	// that describes it, and the DTA's signed promise of that entry at an index.
	sealed := sha256.Sum256(sh.Sealed)
	e, err := wire.ParseEntry(sh.Entry)
	if err != nil || e.DTA != d.Index || e.Domain != b.Domain || e.Kind != wire.KindServer ||
		e.SealedSHA256 != hex.EncodeToString(sealed[:]) || e.TicketSHA256 != hex.EncodeToString(ticketHash[:]) {
		return nil, 0, errors.New("the log entry does not describe this issuance")
	}
	dtaKey, err := d.PublicKey()
	if err != nil {
		return nil, 0, err
	}
	if sh.Promise == nil || sh.Promise.Origin != d.LogOrigin || sh.Promise.Verify(dtaKey, sh.Entry) != nil {
		return nil, 0, errors.New("no valid promise from the DTA's log for this issuance")
	}
	return share, sh.Promise.Index, nil
}

// postDTA POSTs a ticket to a DTA with a timeout and decodes its answer. Errors carry
// the DTA's status and error code, never the ticket.
func postDTA(ctx context.Context, client *http.Client, url, tk string) (*wire.DTAResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, dtaTimeout)
	defer cancel()
	body, _ := json.Marshal(wire.DTARequest{Ticket: tk})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("unreachable: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Code string }
		_ = json.Unmarshal(data, &e)
		return nil, fmt.Errorf("HTTP %d %s", resp.StatusCode, e.Code)
	}
	var out wire.DTAResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("malformed answer: %w", err)
	}
	return &out, nil
}
