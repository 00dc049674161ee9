package devnet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/dkgnet"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/pairing"
)

// dkgRoundTimeout bounds each round of the devnet's key generation: its DTAs are in
// this process, so a round that takes longer has failed.
const dkgRoundTimeout = 20 * time.Second

// generateKeys makes the master shares of a threshold devnet as its DTAs would make
// them on separate machines: each creates its signing key only, then all run the
// distributed key generation (package dkgnet) over HTTP on loopback, each with its
// own board, and store their shares once every DTA confirmed the transcript. It
// returns the DTAs' records and writes the transcript to D/dkg-transcript.json. No
// share is stored unless the ceremony completed: a failed first start leaves signing
// keys only, and the next start runs a new key generation with them.
func (d *Devnet) generateKeys(ctx context.Context) ([]bundle.DTA, error) {
	recs := make([]bundle.DTA, d.n)
	keys := make([]ed25519.PrivateKey, d.n)
	sf := &dkgnet.SessionFile{Version: 1, Domain: Domain, Epoch: 1, Threshold: d.opts.Threshold}
	var nonce [32]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	sf.Nonce = hex.EncodeToString(nonce[:])
	listeners := make([]net.Listener, d.n)
	defer func() {
		for _, l := range listeners {
			if l != nil {
				l.Close()
			}
		}
	}()
	for i := range d.n {
		rec, err := d.signingKeyOnly(ctx, i)
		if err != nil {
			return nil, err
		}
		if keys[i], err = dta.SigningKey(ctx, d.keys[i]); err != nil {
			return nil, err
		}
		if listeners[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
		recs[i] = *rec
		sf.Members = append(sf.Members, dkgnet.SessionMember{Index: rec.Index, SigningKey: rec.SigningKey,
			URL: "http://" + listeners[i].Addr().String()})
	}
	results := make([]*dkgnet.Result, d.n)
	errs := make([]error, d.n)
	var wg sync.WaitGroup
	for i := range d.n {
		log := d.opts.Logger.With("dta", i+1, "ceremony", "dkg")
		board, err := dkgnet.NewBoard(sf, log)
		if err != nil {
			return nil, err
		}
		srv := &http.Server{Handler: board, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(listeners[i])
		defer srv.Close()
		wg.Go(func() {
			results[i], errs[i] = dkgnet.Run(ctx, dkgnet.Config{Session: sf, Key: keys[i], RoundTimeout: dkgRoundTimeout, Logger: log}, board)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("devnet: the distributed key generation failed, no share was stored: %w", err)
	}
	for i, res := range results {
		err := d.keys[i].Put(ctx, dta.SecretMasterShare, res.Share.Bytes())
		res.Share.Set(new(pairing.Scalar))
		if err != nil {
			return nil, err
		}
		recs[i].Commitment = hex.EncodeToString(res.Commitment.Bytes())
	}
	tr, err := json.MarshalIndent(results[0].Transcript, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(d.path(transcriptFile), append(tr, '\n'), 0o644); err != nil {
		return nil, err
	}
	d.opts.Logger.Info("distributed key generation complete", "threshold", d.opts.Threshold, "dtas", d.n,
		"qualified", fmt.Sprint(results[0].Transcript.DKG.Result.Qualified))
	return recs, nil
}

// signingKeyOnly creates DTA i+1's signing key for a key generation, or takes the
// one a first start left when its key generation failed (so that starting again runs
// a new one), and returns the DTA's record without a commitment.
func (d *Devnet) signingKeyOnly(ctx context.Context, i int) (*bundle.DTA, error) {
	ks, index := d.keys[i], uint32(i+1)
	_, shareErr := ks.Get(ctx, dta.SecretMasterShare)
	if key, err := dta.SigningKey(ctx, ks); err == nil && errors.Is(shareErr, keystore.ErrNotFound) {
		return &bundle.DTA{Index: index, URL: d.Info.DTAURLs[i], LogOrigin: dta.LogOrigin(Domain, index),
			SigningKey: hex.EncodeToString(key.Public().(ed25519.PublicKey))}, nil
	}
	rec, err := dta.InitForDKG(ctx, ks, Domain, index, d.Info.DTAURLs[i])
	if err != nil {
		return nil, d.halfMade(ctx, i, err)
	}
	return rec, nil
}

// transcriptFile is the public transcript of a threshold devnet's key generation, in D.
const transcriptFile = "dkg-transcript.json"
