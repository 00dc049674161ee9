package dkg

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/polyroot/polyroot/pairing"
)

// A Transcript is everything public about a session: its description, every message
// (signed, so nobody can add or change one), and the result. Anyone can check it with
// Verify, which recomputes the result from the messages.
type Transcript struct {
	Session  *Session
	Messages []*Message
	Result   *Result
}

// NewTranscript returns the transcript of a completed session, its messages in a
// canonical order (by kind, sender, then bytes) with duplicates removed.
func NewTranscript(s *Session, msgs []*Message, res *Result) *Transcript {
	ms := slices.Clone(msgs)
	slices.SortFunc(ms, func(a, b *Message) int {
		if a.Kind != b.Kind {
			return int(a.Kind) - int(b.Kind)
		}
		if a.From != b.From {
			return int(int64(a.From) - int64(b.From))
		}
		return bytes.Compare(a.Bytes(), b.Bytes())
	})
	ms = slices.CompactFunc(ms, func(a, b *Message) bool { return bytes.Equal(a.Bytes(), b.Bytes()) })
	return &Transcript{Session: s, Messages: ms, Result: res}
}

// Verify recomputes the result from the messages and checks it is the one recorded.
func (t *Transcript) Verify() (*Result, error) {
	if t.Session == nil || t.Result == nil {
		return nil, fmt.Errorf("dkg: transcript: incomplete")
	}
	b, err := newBoard(t.Session, t.Messages)
	if err != nil {
		return nil, fmt.Errorf("dkg: transcript: %w", err)
	}
	res, err := b.evaluate()
	if err != nil {
		return nil, fmt.Errorf("dkg: transcript: %w", err)
	}
	got, _ := json.Marshal(resultJSON(res))
	want, _ := json.Marshal(resultJSON(t.Result))
	if !bytes.Equal(got, want) {
		return nil, fmt.Errorf("dkg: transcript: the recorded result is not the messages' result")
	}
	return res, nil
}

type memberJSON struct {
	Index      uint32 `json:"index"`
	SigningKey string `json:"signing_key"`
	SealKey    string `json:"seal_key,omitempty"`
}

type reshareJSON struct {
	Threshold   int          `json:"threshold"`
	Dealers     []memberJSON `json:"dealers"`
	Commitments []string     `json:"commitments"`
	PublicKey   string       `json:"public_key"`
}

type sessionJSON struct {
	Domain    string       `json:"domain"`
	Epoch     uint64       `json:"epoch"`
	Nonce     string       `json:"nonce"`
	Threshold int          `json:"threshold"`
	Members   []memberJSON `json:"members"`
	Reshare   *reshareJSON `json:"reshare,omitempty"`
}

type faultJSON struct {
	DTA      uint32 `json:"dta"`
	Role     string `json:"role"`
	Reason   string `json:"reason"`
	Excluded bool   `json:"excluded"`
}

type resultJSON_ struct {
	Qualified   []uint32    `json:"qualified"`
	Faults      []faultJSON `json:"faults"`
	PublicKey   string      `json:"public_key"`
	Commitments []string    `json:"commitments"`
}

type transcriptJSON struct {
	Version  int         `json:"version"`
	Session  sessionJSON `json:"session"`
	Messages []string    `json:"messages"` // hex of each message's encoding
	Result   resultJSON_ `json:"result"`
}

func hexPoints(ps []*pairing.G1) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, hex.EncodeToString(p.Bytes()))
	}
	return out
}

func membersJSON(ms []Member) []memberJSON {
	var out []memberJSON
	for _, m := range ms {
		out = append(out, memberJSON{m.Index, hex.EncodeToString(m.SigningKey), hex.EncodeToString(m.SealKey)})
	}
	return out
}

func resultJSON(r *Result) resultJSON_ {
	out := resultJSON_{Qualified: r.Qualified, Faults: []faultJSON{}, PublicKey: hex.EncodeToString(r.PublicKey.Bytes()), Commitments: hexPoints(r.Commitments)}
	for _, f := range r.Faults {
		out.Faults = append(out.Faults, faultJSON(f))
	}
	return out
}

// MarshalJSON encodes the transcript; points and keys in hex, messages as hex of
// their binary encoding.
func (t *Transcript) MarshalJSON() ([]byte, error) {
	s := t.Session
	j := transcriptJSON{Version: 1, Session: sessionJSON{Domain: s.Domain, Epoch: s.Epoch, Nonce: hex.EncodeToString(s.Nonce[:]),
		Threshold: s.Threshold, Members: membersJSON(s.Members)}, Result: resultJSON(t.Result)}
	if r := s.Reshare; r != nil {
		j.Session.Reshare = &reshareJSON{Threshold: r.Threshold, Dealers: membersJSON(r.Dealers),
			Commitments: hexPoints(r.Commitments), PublicKey: hex.EncodeToString(r.PublicKey.Bytes())}
	}
	for _, m := range t.Messages {
		j.Messages = append(j.Messages, hex.EncodeToString(m.Bytes()))
	}
	return json.Marshal(j)
}

type hexReader struct{ err error }

func (h *hexReader) bytes(s string, n int) []byte {
	b, err := hex.DecodeString(s)
	if h.err == nil && (err != nil || (n >= 0 && len(b) != n) || hex.EncodeToString(b) != s) {
		h.err = fmt.Errorf("dkg: transcript: bad hex field %.20q", s)
	}
	return b
}

func (h *hexReader) point(s string) *pairing.G1 {
	b := h.bytes(s, pairing.G1Size)
	if h.err != nil {
		return nil
	}
	p, err := pairing.DecodeG1(b)
	if err != nil {
		h.err = fmt.Errorf("dkg: transcript: %w", err)
	}
	return p
}

func (h *hexReader) members(js []memberJSON, seal bool) []Member {
	var out []Member
	for _, m := range js {
		mm := Member{Index: m.Index, SigningKey: ed25519.PublicKey(h.bytes(m.SigningKey, ed25519.PublicKeySize))}
		if seal || m.SealKey != "" {
			mm.SealKey = h.bytes(m.SealKey, 32)
		}
		out = append(out, mm)
	}
	return out
}

// ParseTranscript decodes a transcript strictly (no unknown fields, no trailing data,
// lower-case hex, every message and point through its strict decoder). It does not
// verify it (Verify).
func ParseTranscript(data []byte) (*Transcript, error) {
	var j transcriptJSON
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&j); err != nil {
		return nil, fmt.Errorf("dkg: transcript: %w", err)
	}
	if d.More() || j.Version != 1 {
		return nil, fmt.Errorf("dkg: transcript: trailing data or version %d", j.Version)
	}
	if len(j.Messages) > 6*2*MaxMembers {
		return nil, fmt.Errorf("dkg: transcript: %d messages", len(j.Messages))
	}
	h := new(hexReader)
	s := &Session{Domain: j.Session.Domain, Epoch: j.Session.Epoch, Threshold: j.Session.Threshold, Members: h.members(j.Session.Members, true)}
	copy(s.Nonce[:], h.bytes(j.Session.Nonce, 32))
	if r := j.Session.Reshare; r != nil {
		s.Reshare = &Reshare{Threshold: r.Threshold, Dealers: h.members(r.Dealers, false), PublicKey: h.point(r.PublicKey)}
		for _, c := range r.Commitments {
			s.Reshare.Commitments = append(s.Reshare.Commitments, h.point(c))
		}
	}
	t := &Transcript{Session: s, Result: &Result{Qualified: j.Result.Qualified, PublicKey: h.point(j.Result.PublicKey)}}
	for _, f := range j.Result.Faults {
		t.Result.Faults = append(t.Result.Faults, Fault(f))
	}
	for _, c := range j.Result.Commitments {
		t.Result.Commitments = append(t.Result.Commitments, h.point(c))
	}
	for _, m := range j.Messages {
		b := h.bytes(m, -1)
		if h.err != nil {
			break
		}
		msg, err := DecodeMessage(b)
		if err != nil {
			return nil, fmt.Errorf("dkg: transcript: %w", err)
		}
		t.Messages = append(t.Messages, msg)
	}
	if h.err != nil {
		return nil, h.err
	}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("dkg: transcript: %w", err)
	}
	return t, nil
}
