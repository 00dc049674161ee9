package client

import (
	"fmt"

	"github.com/polyroot/polyroot/internal/bundle"
)

// IssuanceReceipts returns the pinned trust bundle of dir and the receipts kept in its
// token file: for each share a DTA issued to this client, the DTA's log entry and
// signed promise. It reads only dir (no network): what `polyroot client
// verify-issuance` checks against the anchored logs. The bundle is re-checked against
// its pinned fingerprint, and the token must have been enrolled under it.
func IssuanceReceipts(dir string) (*bundle.Bundle, []Receipt, error) {
	b, fp, err := loadBundle(dirStorage(dir))
	if err != nil {
		return nil, nil, err
	}
	st, err := loadToken(dirStorage(dir))
	if err != nil {
		return nil, nil, err
	}
	if st == nil {
		return nil, nil, ErrNotEnrolled
	}
	if _, _, err := st.check(b.Domain, fp); err != nil {
		return nil, nil, err
	}
	out := make([]Receipt, 0, len(st.Receipts))
	for i, r := range st.Receipts {
		if r.Promise == nil || len(r.Entry) == 0 {
			return nil, nil, fmt.Errorf("client: token file: receipt %d (DTA %d) has no entry or promise", i, r.DTA)
		}
		out = append(out, r)
	}
	return b, out, nil
}
