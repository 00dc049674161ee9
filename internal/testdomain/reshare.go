package testdomain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/dkgnet"
	"github.com/polyroot/polyroot/pairing"
)

// ReshareOverHTTP runs the real resharing protocol (dkgnet, as polyroot dta reshare
// does) among the running DTAs of a threshold domain: every current DTA deals its
// master share, the DTAs not in retire receive new shares of the same key with the
// given threshold, each stored as the pending share (dta.SecretMasterShareNext). The
// registrar signs the successor bundle (serial one greater, the new commitments), and
// each remaining DTA loads it while it runs, as on SIGHUP (dta.Service.Reload, which
// activates the pending share and erases the old one). Retired DTAs stop and their
// master share is deleted. d's Bundle, BundleFile and Fingerprint become the
// successor's.
func (d *Domain) ReshareOverHTTP(threshold int, retire ...uint32) {
	t := d.t
	t.Helper()
	ctx := context.Background()
	pk, err := d.Bundle.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	nonce := sha256.Sum256(fmt.Appendf(nil, "testdomain reshare %s %d", d.Name, d.Bundle.Serial))
	f := &dkgnet.SessionFile{Version: 1, Domain: d.Name, Epoch: d.Bundle.Serial + 2, Nonce: hex.EncodeToString(nonce[:]), Threshold: threshold,
		Reshare: &dkgnet.SessionReshare{Threshold: d.Bundle.Threshold, PublicKey: hex.EncodeToString(pk.Bytes())}}
	type party struct {
		x     *DTA
		ln    net.Listener
		board *dkgnet.Board
	}
	var parties []*party
	for _, x := range d.DTAs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		rec, _ := d.Bundle.Find(x.Index)
		m := dkgnet.SessionMember{Index: x.Index, SigningKey: rec.SigningKey, URL: "http://" + ln.Addr().String()}
		f.Reshare.Dealers = append(f.Reshare.Dealers, m)
		f.Reshare.Commitments = append(f.Reshare.Commitments, rec.Commitment)
		if !slices.Contains(retire, x.Index) {
			f.Members = append(f.Members, m)
		}
		parties = append(parties, &party{x: x, ln: ln})
	}
	for _, p := range parties {
		if p.board, err = dkgnet.NewBoard(f, nil); err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: p.board, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(p.ln)
		defer srv.Close()
	}
	results := make([]*dkgnet.Result, len(parties))
	errs := make([]error, len(parties))
	var wg sync.WaitGroup
	for k, p := range parties {
		wg.Go(func() {
			key, err := dta.SigningKey(ctx, p.x.Keys)
			if err != nil {
				errs[k] = err
				return
			}
			rec, _ := d.Bundle.Find(p.x.Index)
			share, err := dta.ActivateShare(ctx, p.x.Keys, rec, nil)
			if err != nil {
				errs[k] = err
				return
			}
			defer share.Set(new(pairing.Scalar))
			results[k], errs[k] = dkgnet.Run(ctx, dkgnet.Config{Session: f, Key: key, OldShare: share, RoundTimeout: 20 * time.Second}, p.board)
		})
	}
	wg.Wait()
	next := *d.Bundle
	next.DTAs, next.Threshold, next.Serial = nil, threshold, d.Bundle.Serial+1
	for k, p := range parties {
		if errs[k] != nil {
			t.Fatalf("testdomain: resharing, DTA %d: %v", p.x.Index, errs[k])
		}
		if results[k].Share == nil {
			continue
		}
		if err := p.x.Keys.Put(ctx, dta.SecretMasterShareNext, results[k].Share.Bytes()); err != nil {
			t.Fatal(err)
		}
		results[k].Share.Set(new(pairing.Scalar))
		rec, _ := d.Bundle.Find(p.x.Index)
		nr := *rec
		nr.Commitment = hex.EncodeToString(results[k].Commitment.Bytes())
		next.DTAs = append(next.DTAs, nr)
	}
	file, fp, err := bundle.Sign(&next, d.Registrar)
	if err != nil {
		t.Fatal(err)
	}
	if d.Bundle, err = bundle.Parse(file); err != nil {
		t.Fatal(err)
	}
	d.BundleFile, d.Fingerprint = file, fp
	var keep []*DTA
	for _, x := range d.DTAs {
		if slices.Contains(retire, x.Index) {
			x.Stop()
			if err := x.Keys.Delete(ctx, dta.SecretMasterShare); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := x.svc.Reload(ctx, d.Bundle); err != nil {
			t.Fatalf("testdomain: DTA %d reloading the successor bundle: %v", x.Index, err)
		}
		keep = append(keep, x)
	}
	d.DTAs = keep
}
