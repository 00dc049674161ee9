package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/polyroot/polyroot/client"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/devnet"
	"github.com/polyroot/polyroot/internal/dkgnet"
	"github.com/polyroot/polyroot/internal/wire"
)

const (
	bobID  = "bob@example.com"
	bobPIN = "7093"
)

// threshold starts a second domain whose five DTAs make a 3-of-5 sharing of its key
// among themselves, stops two of them, and has bob enrol and log in with the rest.
func (s *story) threshold(ctx context.Context) error {
	certFile, keyFile, err := s.ca.issueFiles(s.dir, "threshold-server")
	if err != nil {
		return err
	}
	start := time.Now()
	s.tnet, err = devnet.Start(ctx, devnet.Options{
		Dir: filepath.Join(s.dir, "threshold"), DTAs: 5, Threshold: 3, ScryptLogN: 10, AnchorPeriod: time.Second,
		ServerTLSCert: certFile, ServerTLSKey: keyFile, DTAProbeInterval: 500 * time.Millisecond, HTTPClient: s.device,
	})
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(s.tnet.Info.Bundle, "..", "dkg-transcript.json"))
	if err != nil {
		return err
	}
	tr, err := dkgnet.ParseTranscript(raw)
	if err != nil {
		return err
	}
	res, err := tr.Verify()
	if err != nil {
		return fmt.Errorf("the key generation's transcript: %w", err)
	}
	s.say("five DTAs ran a distributed key generation among themselves over HTTP (domain up in %s): each dealt", since(start))
	s.say("a random polynomial of degree 2, sealed a point of it to each other DTA and published commitments to it;")
	s.say("qualified dealers %v. s = f(0) was never held by anyone; any 3 of the shares s_i = f(i) make it", res.Qualified)
	s.say("the transcript (every signed message, each DTA's confirmation) is public and verifies: dkg-transcript.json")

	for _, i := range []int{2, 4} {
		if err := s.tnet.StopDTA(i); err != nil {
			return err
		}
	}
	s.say("DTAs 2 and 4 go down")
	var created wire.EnrolmentCreated
	if err := s.tnet.Admin(ctx, "enrolments", wire.EnrolmentRequest{ID: bobID}, &created); err != nil {
		return err
	}
	dir := filepath.Join(s.dir, "bob")
	if err := client.Bootstrap(ctx, dir, s.tnet.Info.ServerURL+"/v1/bundle", s.tnet.Info.Fingerprint, client.WithServerClient(s.device)); err != nil {
		return err
	}
	var faults []error
	bob, err := client.Open(dir, client.WithServerClient(s.device), client.WithInsecureHTTP(),
		client.WithDTAFaults(func(err error) { faults = append(faults, err) }))
	if err != nil {
		return err
	}
	if err := bob.Enroll(ctx, s.tnet.Info.ServerURL, created.Code, []byte(bobPIN), false); err != nil {
		return err
	}
	// The faults are joined: one error per DTA that failed before three answered.
	var down []uint32
	for _, f := range faults {
		all := []error{f}
		if j, ok := f.(interface{ Unwrap() []error }); ok {
			all = j.Unwrap()
		}
		for _, e := range all {
			var ue *client.DTAUnreachableError
			if !errors.As(e, &ue) || (ue.Index != 2 && ue.Index != 4) {
				return fmt.Errorf("a fault of a DTA that is up: %v", e)
			}
			down = append(down, ue.Index)
		}
	}
	slices.Sort(down)
	s.say("bob enrolled: his client took the first three valid shares, of DTAs 1, 3 and 5 (unreachable: %s)", joinIndices(down))
	sess, err := bob.Login(ctx, s.tnet.Info.ServerURL, []byte(bobPIN))
	if err != nil {
		return err
	}
	s.bob = bob
	s.say("and logged in as %q with today's permit from the same three: no DTA operator can hold the domain hostage", sess.ID)
	return nil
}

// joinIndices is "2 and 4", or "none" when there are none.
func joinIndices(xs []uint32) string {
	switch len(xs) {
	case 0:
		return "none"
	case 1:
		return fmt.Sprint(xs[0])
	}
	s := fmt.Sprint(xs[0])
	for _, x := range xs[1 : len(xs)-1] {
		s += fmt.Sprintf(", %d", x)
	}
	return s + fmt.Sprintf(" and %d", xs[len(xs)-1])
}

// reshare has the threshold domain's DTAs refresh their shares of the same key, and
// bob's client adopt the successor bundle.
func (s *story) reshare(ctx context.Context) error {
	for _, i := range []int{2, 4} {
		if err := s.tnet.StartDTA(i); err != nil {
			return err
		}
	}
	s.say("DTAs 2 and 4 are back")
	old, err := bundle.Parse(mustRead(s.tnet.Info.Bundle))
	if err != nil {
		return err
	}
	start := time.Now()
	next, err := s.tnet.Reshare(ctx)
	if err != nil {
		return err
	}
	pk, err := old.PublicKey()
	if err != nil {
		return err
	}
	if npk, err := next.PublicKey(); err != nil || !npk.Equal(pk) {
		return fmt.Errorf("the resharing changed the master public key: %v", err)
	}
	s.say("the five DTAs reshared the key among themselves (%s): each dealt its share as f_i(0) of a fresh", since(start))
	s.say("polynomial; the new shares lie on a new polynomial through the same s, so s·P1, bob's token and sQ stay valid")
	s.say("the registrar signed the successor bundle (serial %d, fingerprint %.16s…); each DTA promoted its new share", next.Serial, s.tnet.Info.Fingerprint)
	s.say("and erased the old one")
	mixed := *next
	mixed.DTAs = []bundle.DTA{old.DTAs[0], next.DTAs[2], next.DTAs[4]}
	if mpk, err := mixed.PublicKey(); err != nil || mpk.Equal(pk) {
		return fmt.Errorf("an old share combines with new ones: %v", err)
	}
	s.say("DTA 1's old share with the new shares of DTAs 3 and 5 makes another key: a share stolen before is worthless")
	if err := s.bob.RenewPermits(ctx, s.tnet.Info.ServerURL, []byte(bobPIN), 1); err != nil {
		return err
	}
	if s.bob.Fingerprint() != s.tnet.Info.Fingerprint {
		return errors.New("bob's client did not adopt the successor bundle")
	}
	s.say("bob's client fetched the successor from the auth server, checked it is signed by the pinned registrar key")
	s.say("for the same s·P1 with a greater serial, adopted it and renewed its permits from the new shares")
	sess, err := s.bob.Login(ctx, s.tnet.Info.ServerURL, []byte(bobPIN))
	if err != nil {
		return err
	}
	s.say("and logged in as %q with the token it enrolled before the resharing", sess.ID)
	return nil
}

// mustRead returns the file's bytes, or none (the parse that follows fails).
func mustRead(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}
