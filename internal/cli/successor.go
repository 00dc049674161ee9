package cli

import (
	"fmt"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/dtacmd"
)

// makeSuccessor makes b, assembled from the flags, the successor of the bundle that
// bundle assemble --successor-of names (nothing without the flag): serial one greater,
// the old permit period and PIN policy unless the flags set them, and
// bundle.CheckSuccessor must pass, so that a registrar cannot publish as a resharing a
// bundle whose master public key (or registrar, domain, permit period) changed.
func makeSuccessor(c *ucli.Command, b *bundle.Bundle) error {
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
	fmt.Fprintf(c.Root().ErrWriter, "polyroot: successor of %s (fingerprint %.16s…): serial %d → %d, the same master public key; permit period %v\n",
		path, fp, old.Serial, b.Serial, time.Duration(b.PermitPeriod)*time.Second)
	return nil
}
