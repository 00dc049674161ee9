package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/polyroot/polyroot/internal/wire"
)

// PendingFile holds an enrolment that has not completed (mode 0600): the seal keys the
// client proved with its code, so that a retry with the same code redeems it again
// for the same keys instead of finding it used. It is removed when the enrolment
// completes, and with it the key of the client shares.
const PendingFile = "enrolment-pending.json"

// pendingEnrolment is the content of PendingFile. It holds no share: the shares of
// the DTAs that did answer, with this key, would make the client key with one more
// (a colluding DTA's) without any PIN. A retry fetches every share again; DTAs answer
// a ticket they have served from their records.
type pendingEnrolment struct {
	Domain  string `json:"domain"`
	CodeID  []byte `json:"code_id"`
	SealKey []byte `json:"seal_key"` // X25519 private key of the client shares
	// PermitKey is the X25519 private key of the permits; absent in the file of an
	// enrolment begun by a version that proved one key for both, which goes on so.
	PermitKey []byte    `json:"permit_key,omitempty"`
	Started   time.Time `json:"started"`
}

// sealKeys are an enrolment's X25519 key pairs: one for its client shares, one for
// its permits (nil for an enrolment begun with one key for both).
type sealKeys struct {
	clientPub, clientPriv []byte
	permitPub, permitPriv []byte
}

// permit returns the key pair the permits are sealed to.
func (k *sealKeys) permit() (pub, priv []byte) {
	if k.permitPriv == nil {
		return k.clientPub, k.clientPriv
	}
	return k.permitPub, k.permitPriv
}

// pendingFor returns the seal keys of the pending enrolment of code in c's directory,
// or fresh ones, recorded before the code is sent: whatever happens to the answer,
// the next try proves the code for the same keys.
func (c *Client) pendingFor(code string) (*sealKeys, error) {
	norm, err := wire.NormalizeCode(code)
	if err != nil {
		return nil, fmt.Errorf("client: the enrolment code: %w", err)
	}
	codeID, _ := wire.CodeSecrets(norm)
	if raw, err := c.st.Load(PendingFile); err == nil {
		var p pendingEnrolment
		if json.Unmarshal(raw, &p) == nil && p.Domain == c.domain.Name && string(p.CodeID) == string(codeID[:]) {
			if k, err := pendingKeys(&p); err == nil {
				return k, nil
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var k sealKeys
	if k.clientPub, k.clientPriv, err = wire.NewSealKey(); err != nil {
		return nil, err
	}
	if k.permitPub, k.permitPriv, err = wire.NewSealKey(); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(pendingEnrolment{Domain: c.domain.Name, CodeID: codeID[:], SealKey: k.clientPriv,
		PermitKey: k.permitPriv, Started: c.o.now()})
	if err != nil {
		return nil, err
	}
	if err := c.st.Store(PendingFile, raw); err != nil {
		return nil, err
	}
	return &k, nil
}

// pendingKeys are the keys of a pending enrolment's file, if they are valid.
func pendingKeys(p *pendingEnrolment) (*sealKeys, error) {
	k := &sealKeys{clientPriv: p.SealKey}
	var err error
	if k.clientPub, err = wire.SealPublicKey(p.SealKey); err != nil {
		return nil, err
	}
	if p.PermitKey != nil {
		k.permitPriv = p.PermitKey
		if k.permitPub, err = wire.SealPublicKey(p.PermitKey); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// dropPending removes the pending enrolment, once completed.
func (c *Client) dropPending() error {
	return c.st.Remove(PendingFile)
}
