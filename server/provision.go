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

// A DTAError names the DTAs that failed during provisioning or revocation.
type DTAError struct {
	Failed map[uint32]error // by DTA index
}

func (e *DTAError) Error() string {
	var b strings.Builder
	b.WriteString("server: DTA failures:")
	for _, idx := range sortedKeys(e.Failed) {
		fmt.Fprintf(&b, " DTA %d: %v;", idx, e.Failed[idx])
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Provision fetches the server key share s_i·Q from every DTA of the bundle (in
// parallel, each request with a registrar-signed server ticket naming a fresh HPKE key
// and a timeout), opens each sealed share, checks it against the DTA's commitment C_i
// (e(C_i, Q) = e(P1, s_i·Q)) and combines them into sQ. A *DTAError names every DTA
// that could not be reached or whose share is bad. The caller stores sQ.Bytes() under
// SecretServerKey; sQ is the server's secret and must never be logged.
func Provision(ctx context.Context, b *bundle.Bundle, registrarKey ed25519.PrivateKey, client *http.Client) (*pairing.G2, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if !bytes.Equal(registrarKey.Public().(ed25519.PublicKey), b.RegistrarPublicKey()) {
		return nil, errors.New("server: the registrar key is not the bundle's registrar key")
	}
	pub, priv, err := wire.NewSealKey()
	if err != nil {
		return nil, err
	}
	type result struct {
		share *pairing.G2
		err   error
	}
	results := make([]result, len(b.DTAs))
	var wg sync.WaitGroup
	for i := range b.DTAs {
		wg.Go(func() {
			d := &b.DTAs[i]
			share, err := fetchServerShare(ctx, client, b, d, registrarKey, pub, priv)
			results[i] = result{share, err}
		})
	}
	wg.Wait()
	failed := map[uint32]error{}
	var indices []uint32
	var shares []*pairing.G2
	for i, r := range results {
		if r.err != nil {
			failed[b.DTAs[i].Index] = r.err
			continue
		}
		indices, shares = append(indices, b.DTAs[i].Index), append(shares, r.share)
	}
	if len(failed) > 0 {
		return nil, &DTAError{Failed: failed}
	}
	return pairing.Combine(b.SharingMode(), indices, shares)
}

func fetchServerShare(ctx context.Context, client *http.Client, b *bundle.Bundle, d *bundle.DTA,
	registrar ed25519.PrivateKey, pub, priv []byte) (*pairing.G2, error) {
	tk, err := ticket.Sign(ticket.Ticket{Domain: b.Domain, Kind: ticket.KindServer,
		SealKey: hex.EncodeToString(pub), NotAfter: time.Now().Add(10 * time.Minute)}, registrar)
	if err != nil {
		return nil, err
	}
	resp, err := postDTA(ctx, client, d.URL+"/v1/shares/server", tk)
	if err != nil {
		return nil, err
	}
	if resp.DTA != d.Index || len(resp.Shares) != 1 || len(resp.Shares[0].Sealed) == 0 {
		return nil, errors.New("malformed answer")
	}
	raw, err := wire.Open(priv, &wire.SealContext{Domain: b.Domain, DTA: d.Index, Kind: wire.KindServer, TicketSHA256: sha256.Sum256([]byte(tk))}, resp.Shares[0].Sealed)
	if err != nil {
		return nil, errors.New("the sealed share does not open")
	}
	share, err := pairing.DecodeG2(raw)
	if err != nil {
		return nil, errors.New("bad share: not a valid G2 point")
	}
	c, err := d.CommitmentPoint()
	if err != nil {
		return nil, err
	}
	if err := pairing.VerifyServerShare(c, share); err != nil {
		return nil, errors.New("bad share: it does not match the DTA's commitment in the bundle")
	}
	return share, nil
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
