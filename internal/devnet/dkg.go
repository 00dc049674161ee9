package devnet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/dkgnet"
	"github.com/polyroot/polyroot/internal/dtacmd"
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
func (d *Devnet) generateKeys(ctx context.Context) ([]bundle.DTA, string, error) {
	recs := make([]bundle.DTA, d.n)
	keys := make([]ed25519.PrivateKey, d.n)
	for i := range d.n {
		rec, err := d.signingKeyOnly(ctx, i)
		if err != nil {
			return nil, "", err
		}
		if keys[i], err = dta.SigningKey(ctx, d.keys[i]); err != nil {
			return nil, "", err
		}
		recs[i] = *rec
	}
	sf := &dkgnet.SessionFile{Version: 1, Domain: d.Info.Domain, Epoch: 1, Threshold: d.opts.Threshold}
	results, err := d.ceremony(ctx, sf, recs, keys, nil)
	if err != nil {
		return nil, "", fmt.Errorf("devnet: the distributed key generation failed, no share was stored: %w", err)
	}
	for i, res := range results {
		err := d.keys[i].Put(ctx, dta.SecretMasterShare, res.Share.Bytes())
		res.Share.Set(new(pairing.Scalar))
		if err != nil {
			return nil, "", err
		}
		recs[i].Commitment = hex.EncodeToString(res.Commitment.Bytes())
	}
	sum, err := writeTranscript(d.path(transcriptFile), results[0])
	if err != nil {
		return nil, "", err
	}
	d.opts.Logger.Info("distributed key generation complete", "threshold", d.opts.Threshold, "dtas", d.n,
		"qualified", fmt.Sprint(results[0].Transcript.DKG.Result.Qualified))
	return recs, sum, nil
}

// Reshare gives every DTA of a threshold devnet a fresh share of the same master key
// (a resharing among the same DTAs, same threshold: package dkgnet, over HTTP on
// loopback), as `dta reshare` does on separate machines: each DTA deals its share and
// keeps its new one pending; then the registrar signs the successor bundle (serial + 1,
// the new commitments, the same s·P1), and the DTAs and the auth server restart on it,
// each DTA promoting its pending share and erasing the old one. The transcript is
// written to D/reshare-<serial>-transcript.json. It returns the successor bundle.
// Clients adopt it the next time a DTA's share fails its proof against the bundle they
// pinned, or at their daily check.
func (d *Devnet) Reshare(ctx context.Context) (*bundle.Bundle, error) {
	old, _, err := dtacmd.ReadBundle(d.path("bundle.json"))
	if err != nil {
		return nil, err
	}
	if old.Mode != "threshold" {
		return nil, errors.New("devnet: only a threshold devnet can reshare its key")
	}
	pk, err := old.PublicKey()
	if err != nil {
		return nil, err
	}
	keys := make([]ed25519.PrivateKey, d.n)
	shares := make([]*pairing.Scalar, d.n)
	defer func() {
		for _, s := range shares {
			if s != nil {
				s.Set(new(pairing.Scalar))
			}
		}
	}()
	sf := &dkgnet.SessionFile{Version: 1, Domain: d.Info.Domain, Epoch: old.Serial + 2, Threshold: old.Threshold,
		Reshare: &dkgnet.SessionReshare{Threshold: old.Threshold, PublicKey: hex.EncodeToString(pk.Bytes())}}
	for i := range d.n {
		if keys[i], err = dta.SigningKey(ctx, d.keys[i]); err != nil {
			return nil, err
		}
		if shares[i], err = dta.ActivateShare(ctx, d.keys[i], &old.DTAs[i], nil); err != nil {
			return nil, err
		}
		sf.Reshare.Commitments = append(sf.Reshare.Commitments, old.DTAs[i].Commitment)
	}
	results, err := d.ceremony(ctx, sf, old.DTAs, keys, shares)
	if err != nil {
		return nil, fmt.Errorf("devnet: the resharing failed, no share was stored: %w", err)
	}
	next := *old
	next.Serial++
	next.DTAs = slices.Clone(old.DTAs)
	for i, res := range results {
		err := d.keys[i].Put(ctx, dta.SecretMasterShareNext, res.Share.Bytes())
		res.Share.Set(new(pairing.Scalar))
		if err != nil {
			return nil, err
		}
		next.DTAs[i].Commitment = hex.EncodeToString(res.Commitment.Bytes())
	}
	if next.TranscriptSHA256, err = writeTranscript(d.path(reshareTranscriptFile(next.Serial)), results[0]); err != nil {
		return nil, err
	}
	file, fp, err := bundle.Sign(&next, d.registrar)
	if err != nil {
		return nil, err
	}
	if _, err := bundle.ParseSuccessor(old, file); err != nil {
		return nil, err
	}
	if err := os.WriteFile(d.path("bundle.sha256"), []byte(fp+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(d.path("bundle.json"), file, 0o644); err != nil {
		return nil, err
	}
	d.Info.Fingerprint = fp
	raw, _ := json.MarshalIndent(d.Info, "", "  ")
	if err := os.WriteFile(d.path("devnet.json"), append(raw, '\n'), 0o644); err != nil {
		return nil, err
	}
	for i := 1; i <= d.n; i++ {
		if d.dtas[i-1] != nil {
			if err := d.StopDTA(i); err != nil {
				return nil, err
			}
			if err := d.StartDTA(i); err != nil {
				return nil, err
			}
		}
	}
	if err := d.server.shutdown(); err != nil {
		return nil, err
	}
	d.server = nil
	if err := d.startServer(ctx, &next); err != nil {
		return nil, err
	}
	d.opts.Logger.Info("resharing complete", "serial", next.Serial, "qualified", fmt.Sprint(results[0].Transcript.DKG.Result.Qualified))
	return &next, nil
}

// ceremony runs a key generation or resharing among the DTAs of recs (their signing
// keys in keys; their shares in old, in a resharing), each with its own board on a
// loopback listener, and returns every DTA's result once all confirmed it.
func (d *Devnet) ceremony(ctx context.Context, sf *dkgnet.SessionFile, recs []bundle.DTA, keys []ed25519.PrivateKey, old []*pairing.Scalar) ([]*dkgnet.Result, error) {
	var nonce [32]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	sf.Nonce = hex.EncodeToString(nonce[:])
	listeners := make([]net.Listener, len(recs))
	defer func() {
		for _, l := range listeners {
			if l != nil {
				l.Close()
			}
		}
	}()
	for i, rec := range recs {
		var err error
		if listeners[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
		m := dkgnet.SessionMember{Index: rec.Index, SigningKey: rec.SigningKey, URL: "http://" + listeners[i].Addr().String()}
		sf.Members = append(sf.Members, m)
		if sf.Reshare != nil {
			sf.Reshare.Dealers = append(sf.Reshare.Dealers, m)
		}
	}
	results := make([]*dkgnet.Result, len(recs))
	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	for i, rec := range recs {
		log := d.opts.Logger.With("dta", rec.Index, "ceremony", "dkg")
		board, err := dkgnet.NewBoard(sf, log)
		if err != nil {
			return nil, err
		}
		srv := &http.Server{Handler: board, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(listeners[i])
		defer srv.Close()
		cfg := dkgnet.Config{Session: sf, Key: keys[i], RoundTimeout: dkgRoundTimeout, Logger: log}
		if old != nil {
			cfg.OldShare = old[i]
		}
		wg.Go(func() { results[i], errs[i] = dkgnet.Run(ctx, cfg, board) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return results, nil
}

// writeTranscript writes a ceremony's public transcript to path and returns the hex
// SHA-256 of the file, which the bundle names (and each DTA's log with it).
func writeTranscript(path string, res *dkgnet.Result) (string, error) {
	tr, err := json.MarshalIndent(res.Transcript, "", "  ")
	if err != nil {
		return "", err
	}
	tr = append(tr, '\n')
	sum := sha256.Sum256(tr)
	return hex.EncodeToString(sum[:]), os.WriteFile(path, tr, 0o644)
}

// signingKeyOnly creates DTA i+1's signing key for a key generation, or takes the
// one a first start left when its key generation failed (so that starting again runs
// a new one), and returns the DTA's record without a commitment.
func (d *Devnet) signingKeyOnly(ctx context.Context, i int) (*bundle.DTA, error) {
	ks, index := d.keys[i], uint32(i+1)
	_, shareErr := ks.Get(ctx, dta.SecretMasterShare)
	if key, err := dta.SigningKey(ctx, ks); err == nil && errors.Is(shareErr, keystore.ErrNotFound) {
		return &bundle.DTA{Index: index, URL: d.Info.DTAURLs[i], LogOrigin: dta.LogOrigin(d.Info.Domain, index),
			SigningKey: hex.EncodeToString(key.Public().(ed25519.PublicKey))}, nil
	}
	rec, err := dta.InitForDKG(ctx, ks, d.Info.Domain, index, d.Info.DTAURLs[i])
	if err != nil {
		return nil, d.halfMade(ctx, i, err)
	}
	return rec, nil
}

// transcriptFile is the public transcript of a threshold devnet's key generation, in D.
const transcriptFile = "dkg-transcript.json"

// reshareTranscriptFile is the public transcript of the resharing that made the
// bundle of this serial, in D.
func reshareTranscriptFile(serial uint64) string {
	return fmt.Sprintf("reshare-%d-transcript.json", serial)
}
