package cli

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/dkgnet"
	"github.com/polyroot/polyroot/internal/dtacmd"
)

// makeSuccessor makes b, assembled from the flags, the successor of the bundle that
// bundle assemble --successor-of names (nothing without the flag): serial one greater,
// the old permit period and PIN policy unless the flags set them, and
// bundle.CheckSuccessor must pass, so that a registrar cannot publish as a resharing a
// bundle whose master public key (or registrar, domain, permit period) changed. tr, the
// transcript checked against b (threshold mode), must be the resharing of that bundle
// (checkReshare).
func makeSuccessor(c *ucli.Command, b *bundle.Bundle, tr *dkgnet.Transcript) error {
	path := c.String("successor-of")
	if path == "" {
		return nil
	}
	old, fp, err := dtacmd.ReadBundle(path)
	if err != nil {
		return fmt.Errorf("--successor-of: %w", err)
	}
	if !c.IsSet("permit-period") {
		b.PermitPeriod = old.PermitPeriod
	}
	if !c.IsSet("min-pin-length") {
		b.MinPINLength = old.MinPINLength
	}
	if b.Anchoring == nil {
		b.Anchoring = old.Anchoring
	}
	b.Serial = old.Serial + 1
	if err := bundle.CheckSuccessor(old, b); err != nil {
		return fmt.Errorf("--successor-of %s: %w; clients would refuse it", path, err)
	}
	if tr != nil {
		if err := checkReshare(tr, old); err != nil {
			return fmt.Errorf("--successor-of %s: the transcript %w", path, err)
		}
	}
	fmt.Fprintf(c.Root().ErrWriter, "polyroot: successor of %s (fingerprint %.16s…): serial %d → %d, the same master public key; permit period %v\n",
		path, fp, old.Serial, b.Serial, time.Duration(b.PermitPeriod)*time.Second)
	return nil
}

// checkReshare checks that transcript tr is the resharing of bundle old: a resharing,
// of old's serial (dkg session --reshare-from sets the epoch), from old's threshold,
// dealt by DTAs of old with their signing keys and commitments. The same master
// public key is checked by bundle.CheckSuccessor.
func checkReshare(tr *dkgnet.Transcript, old *bundle.Bundle) error {
	s := tr.DKG.Session
	r := s.Reshare
	switch {
	case r == nil:
		return errors.New("is a key generation, not a resharing (dkg session --reshare-from)")
	case s.Epoch != reshareEpoch(old.Serial):
		return fmt.Errorf("is of epoch %d, not a resharing of serial %d (epoch %d): another bundle's resharing?", s.Epoch, old.Serial, reshareEpoch(old.Serial))
	case r.Threshold != old.Threshold:
		return fmt.Errorf("reshares a threshold of %d, not the bundle's %d", r.Threshold, old.Threshold)
	}
	for k, d := range r.Dealers {
		i := slices.IndexFunc(old.DTAs, func(o bundle.DTA) bool { return o.Index == d.Index })
		if i < 0 || old.DTAs[i].SigningKey != hex.EncodeToString(d.SigningKey) || old.DTAs[i].Commitment != hex.EncodeToString(r.Commitments[k].Bytes()) {
			return fmt.Errorf("has old DTA %d dealing with another key or commitment than the bundle's", d.Index)
		}
	}
	return nil
}
