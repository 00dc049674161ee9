package dkgnet

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/polyroot/polyroot/internal/dkg"
)

// A Transcript is the public record of a completed ceremony: the dkg transcript
// (session with seal keys, every signed message, the result) and every party's signed
// confirmation of its hash. Anyone can check it with Verify.
type Transcript struct {
	DKG      *dkg.Transcript
	confirms []*notice // one per party, in the order of the session's parties
}

type transcriptJSON struct {
	Version       int             `json:"version"`
	DKG           json.RawMessage `json:"dkg"`
	Confirmations []string        `json:"confirmations"` // hex of each confirm notice
}

// MarshalJSON encodes the transcript.
func (t *Transcript) MarshalJSON() ([]byte, error) {
	d, err := json.Marshal(t.DKG)
	if err != nil {
		return nil, err
	}
	j := transcriptJSON{Version: 1, DKG: d, Confirmations: []string{}}
	for _, n := range t.confirms {
		j.Confirmations = append(j.Confirmations, hex.EncodeToString(n.bytes()))
	}
	return json.Marshal(j)
}

// ParseTranscript decodes a transcript strictly; it does not verify it (Verify).
func ParseTranscript(data []byte) (*Transcript, error) {
	var j transcriptJSON
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&j); err != nil {
		return nil, fmt.Errorf("dkgnet: transcript: %w", err)
	}
	if d.More() || j.Version != 1 {
		return nil, fmt.Errorf("dkgnet: transcript: trailing data or version %d", j.Version)
	}
	if len(j.Confirmations) > 2*dkg.MaxMembers {
		return nil, fmt.Errorf("dkgnet: transcript: %d confirmations", len(j.Confirmations))
	}
	tr, err := dkg.ParseTranscript(j.DKG)
	if err != nil {
		return nil, err
	}
	t := &Transcript{DKG: tr}
	for _, c := range j.Confirmations {
		b, err := hex.DecodeString(c)
		if err != nil || hex.EncodeToString(b) != c {
			return nil, errors.New("dkgnet: transcript: a confirmation is not lower-case hex")
		}
		n, err := decodeNotice(b)
		if err != nil {
			return nil, fmt.Errorf("dkgnet: transcript: confirmation: %w", err)
		}
		t.confirms = append(t.confirms, n)
	}
	return t, nil
}

// sessionParties lists the signing keys of a session's parties: the members, then the
// old dealers that are not members.
func sessionParties(s *dkg.Session) []ed25519.PublicKey {
	var out []ed25519.PublicKey
	add := func(ms []dkg.Member) {
		for _, m := range ms {
			dup := false
			for _, k := range out {
				dup = dup || bytes.Equal(k, m.SigningKey)
			}
			if !dup {
				out = append(out, m.SigningKey)
			}
		}
	}
	add(s.Members)
	if s.Reshare != nil {
		add(s.Reshare.Dealers)
	}
	return out
}

// Verify recomputes the dkg result from the messages and checks that every party
// confirmed this transcript, once, with a valid signature. It returns the result.
func (t *Transcript) Verify() (*dkg.Result, error) {
	if t.DKG == nil {
		return nil, errors.New("dkgnet: transcript: empty")
	}
	res, err := t.DKG.Verify()
	if err != nil {
		return nil, err
	}
	id, err := t.DKG.Session.ID()
	if err != nil {
		return nil, fmt.Errorf("dkgnet: transcript: %w", err)
	}
	h, err := TranscriptHash(t.DKG)
	if err != nil {
		return nil, err
	}
	keys := sessionParties(t.DKG.Session)
	if len(t.confirms) != len(keys) {
		return nil, fmt.Errorf("dkgnet: transcript: %d confirmations for %d DTAs", len(t.confirms), len(keys))
	}
	for k, key := range keys {
		n := t.confirms[k]
		switch {
		case !bytes.Equal(n.signer[:], key):
			return nil, fmt.Errorf("dkgnet: transcript: confirmation %d is not signed by the DTA it belongs to", k)
		case n.typ != noticeConfirm || n.bind != id || n.value != h:
			return nil, fmt.Errorf("dkgnet: transcript: confirmation %d is not of this transcript", k)
		}
		if err := n.verify(); err != nil {
			return nil, fmt.Errorf("dkgnet: transcript: confirmation %d: %w", k, err)
		}
	}
	return res, nil
}
