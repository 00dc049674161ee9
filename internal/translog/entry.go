package translog

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Kinds of issuance entry.
const (
	KindClient = "client"
	KindPermit = "permit"
	KindServer = "server"
	KindRevoke = "revoke"
)

// MaxEntrySize bounds an encoded entry; Parse refuses larger ones.
const MaxEntrySize = 1024

// An Entry is one issuance as the log records it: hashes and the salted identity hash,
// never a share or an app-level identity.
type Entry struct {
	Version      int    `json:"v"`
	DTA          uint32 `json:"dta"`
	Domain       string `json:"domain"`
	Kind         string `json:"kind"`
	IDHash       string `json:"idhash,omitempty"` // hex; absent for server shares
	Slot         uint64 `json:"slot,omitempty"`   // permit slot
	ShareSHA256  string `json:"share_sha256,omitempty"`
	TicketSHA256 string `json:"ticket_sha256"`
	Time         int64  `json:"time"` // unix seconds
}

// ErrEntry reports a malformed entry.
var ErrEntry = errors.New("translog: malformed entry")

// Marshal returns the entry's canonical encoding: JSON with the fields in the order
// above. It checks the entry first.
func (e *Entry) Marshal() ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// ParseEntry decodes and checks an entry. It accepts only canonical encodings: the
// bytes Marshal gives for the entry they decode to.
func ParseEntry(b []byte) (*Entry, error) {
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes", ErrEntry, len(b))
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var e Entry
	if err := d.Decode(&e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEntry, err)
	}
	canon, err := e.Marshal()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, b) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrEntry)
	}
	return &e, nil
}

func (e *Entry) check() error {
	hash32 := func(s string, need bool) bool {
		if s == "" {
			return !need
		}
		b, err := hex.DecodeString(s)
		return err == nil && len(b) == 32 && hex.EncodeToString(b) == s
	}
	switch {
	case e.Version != 1:
		return fmt.Errorf("%w: version %d", ErrEntry, e.Version)
	case e.DTA == 0 || e.Domain == "" || len(e.Domain) > 253:
		return fmt.Errorf("%w: DTA index or domain", ErrEntry)
	case !hash32(e.TicketSHA256, true):
		return fmt.Errorf("%w: ticket hash", ErrEntry)
	case e.Time <= 0:
		return fmt.Errorf("%w: time", ErrEntry)
	}
	switch e.Kind {
	case KindClient, KindPermit:
		if !hash32(e.IDHash, true) || !hash32(e.ShareSHA256, true) || (e.Kind == KindClient && e.Slot != 0) {
			return fmt.Errorf("%w: %s entry fields", ErrEntry, e.Kind)
		}
	case KindServer:
		if e.IDHash != "" || e.Slot != 0 || !hash32(e.ShareSHA256, true) {
			return fmt.Errorf("%w: server entry fields", ErrEntry)
		}
	case KindRevoke:
		if !hash32(e.IDHash, true) || e.Slot != 0 || e.ShareSHA256 != "" {
			return fmt.Errorf("%w: revoke entry fields", ErrEntry)
		}
	default:
		return fmt.Errorf("%w: kind %q", ErrEntry, e.Kind)
	}
	return nil
}
