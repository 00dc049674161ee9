package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/polyroot/polyroot/internal/wire"
)

// PendingFile holds an enrolment that has not completed (mode 0600): the seal key the
// client proved with its code, so that a retry with the same code redeems it again
// for the same key instead of finding it used. It is removed when the enrolment
// completes.
const PendingFile = "enrolment-pending.json"

// pendingEnrolment is the content of PendingFile. It holds no share: the shares of
// the DTAs that did answer, with this key, would make the client key with one more
// (a colluding DTA's) without any PIN. A retry fetches every share again; DTAs answer
// a ticket they have served from their records.
type pendingEnrolment struct {
	Domain  string    `json:"domain"`
	CodeID  []byte    `json:"code_id"`
	SealKey []byte    `json:"seal_key"` // X25519 private key
	Started time.Time `json:"started"`
}

// pendingFor returns the seal key of the pending enrolment of code in c's directory,
// or a fresh one, recorded before the code is sent: whatever happens to the answer,
// the next try proves the code for the same key.
func (c *Client) pendingFor(code string) (sealPub, sealPriv []byte, err error) {
	norm, err := wire.NormalizeCode(code)
	if err != nil {
		return nil, nil, fmt.Errorf("client: the enrolment code: %w", err)
	}
	codeID, _ := wire.CodeSecrets(norm)
	if raw, err := c.st.Load(PendingFile); err == nil {
		var p pendingEnrolment
		if json.Unmarshal(raw, &p) == nil && p.Domain == c.domain.Name && string(p.CodeID) == string(codeID[:]) {
			if pub, err := wire.SealPublicKey(p.SealKey); err == nil {
				return pub, p.SealKey, nil
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	if sealPub, sealPriv, err = wire.NewSealKey(); err != nil {
		return nil, nil, err
	}
	raw, err := json.Marshal(pendingEnrolment{Domain: c.domain.Name, CodeID: codeID[:], SealKey: sealPriv, Started: c.o.now()})
	if err != nil {
		return nil, nil, err
	}
	if err := c.st.Store(PendingFile, raw); err != nil {
		return nil, nil, err
	}
	return sealPub, sealPriv, nil
}

// dropPending removes the pending enrolment, once completed.
func (c *Client) dropPending() error {
	return c.st.Remove(PendingFile)
}
