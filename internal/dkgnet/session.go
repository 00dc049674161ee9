package dkgnet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/polyroot/polyroot/internal/dkg"
	"github.com/polyroot/polyroot/pairing"
)

// A SessionFile is what the registrar gives every member before a ceremony: the
// parameters of the dkg.Session except the seal keys, which each member makes fresh
// and announces in the hello round, and where each member's board listens.
type SessionFile struct {
	Version   int             `json:"version"` // 1
	Domain    string          `json:"domain"`
	Epoch     uint64          `json:"epoch"`
	Nonce     string          `json:"nonce"` // 32 random bytes, lower-case hex
	Threshold int             `json:"threshold"`
	Members   []SessionMember `json:"members"`
	Reshare   *SessionReshare `json:"reshare,omitempty"`
}

// A SessionMember is one DTA of a session: its index, its Ed25519 public key (from its
// DTA record) and the URL of its board (http(s)://host:port).
type SessionMember struct {
	Index      uint32 `json:"index"`
	SigningKey string `json:"signing_key"` // hex
	URL        string `json:"url"`
}

// A SessionReshare describes the committee that holds the key now, in a resharing
// (dkg.Reshare): its threshold, its members (dealers, with their boards), their
// public commitments C_i (hex, in the order of Dealers) and the public key.
type SessionReshare struct {
	Threshold   int             `json:"threshold"`
	Dealers     []SessionMember `json:"dealers"`
	Commitments []string        `json:"commitments"`
	PublicKey   string          `json:"public_key"`
}

// ParseSessionFile decodes a session file strictly (no unknown fields, no trailing
// data, lower-case hex) and checks it.
func ParseSessionFile(data []byte) (*SessionFile, error) {
	var f SessionFile
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("dkgnet: session file: %w", err)
	}
	if d.More() {
		return nil, fmt.Errorf("dkgnet: session file: trailing data")
	}
	if _, err := newPlan(&f); err != nil {
		return nil, err
	}
	return &f, nil
}

// A party is one participant of a ceremony, identified by its Ed25519 key: a member
// of the (new) committee, a dealer of the old one in a resharing, or both.
type party struct {
	key            ed25519.PublicKey
	member, dealer uint32 // indices, 0 if not
	url            string
}

func (p party) String() string {
	if p.member != 0 {
		return fmt.Sprintf("DTA %d (%s)", p.member, p.url)
	}
	return fmt.Sprintf("old DTA %d (%s)", p.dealer, p.url)
}

// A plan is a checked session file: its hash, the parties and the dkg.Session
// without seal keys.
type plan struct {
	hash    [32]byte
	parties []party
	base    dkg.Session // Members without SealKey
	maxMsg  int         // the largest encoded message a member may send
}

const sessionContext = "polyroot/v1 dkgnet session\x00"

func decodeHex(what, s string, n int) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != n || hex.EncodeToString(b) != s {
		return nil, fmt.Errorf("dkgnet: session file: %s: want %d bytes in lower-case hex", what, n)
	}
	return b, nil
}

func checkBoardURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q is not an http(s)://host:port URL", s)
	}
	return strings.TrimSuffix(s, "/"), nil
}

func (pl *plan) addParties(ms []SessionMember, dealer bool) ([]dkg.Member, error) {
	var out []dkg.Member
	for _, m := range ms {
		key, err := decodeHex(fmt.Sprintf("signing key of DTA %d", m.Index), m.SigningKey, ed25519.PublicKeySize)
		if err != nil {
			return nil, err
		}
		u, err := checkBoardURL(m.URL)
		if err != nil {
			return nil, fmt.Errorf("dkgnet: session file: DTA %d: %w", m.Index, err)
		}
		out = append(out, dkg.Member{Index: m.Index, SigningKey: key})
		k := pl.find(key)
		if k < 0 {
			pl.parties = append(pl.parties, party{key: key, url: u})
			k = len(pl.parties) - 1
		} else if pl.parties[k].url != u {
			return nil, fmt.Errorf("dkgnet: session file: DTA %d has two board URLs, %s and %s", m.Index, pl.parties[k].url, u)
		}
		if dealer {
			pl.parties[k].dealer = m.Index
		} else {
			pl.parties[k].member = m.Index
		}
	}
	return out, nil
}

// find returns the index of the party whose key is key, -1 if none.
func (pl *plan) find(key []byte) int {
	for k, p := range pl.parties {
		if bytes.Equal(p.key, key) {
			return k
		}
	}
	return -1
}

func newPlan(f *SessionFile) (*plan, error) {
	if f.Version != 1 {
		return nil, fmt.Errorf("dkgnet: session file: version %d, want 1", f.Version)
	}
	pl := &plan{base: dkg.Session{Domain: f.Domain, Epoch: f.Epoch, Threshold: f.Threshold}}
	nonce, err := decodeHex("nonce", f.Nonce, 32)
	if err != nil {
		return nil, err
	}
	copy(pl.base.Nonce[:], nonce)
	if pl.base.Members, err = pl.addParties(f.Members, false); err != nil {
		return nil, err
	}
	if r := f.Reshare; r != nil {
		rs := &dkg.Reshare{Threshold: r.Threshold}
		if rs.Dealers, err = pl.addParties(r.Dealers, true); err != nil {
			return nil, err
		}
		pts := append([]string{r.PublicKey}, r.Commitments...)
		for k, s := range pts {
			b, err := decodeHex(fmt.Sprintf("reshare commitment %d", k), s, pairing.G1Size)
			if err != nil {
				return nil, err
			}
			p, err := pairing.DecodeG1(b)
			if err != nil {
				return nil, fmt.Errorf("dkgnet: session file: reshare commitment %d: %w", k, err)
			}
			if k == 0 {
				rs.PublicKey = p
			} else {
				rs.Commitments = append(rs.Commitments, p)
			}
		}
		pl.base.Reshare = rs
	}
	// Check the session as it will be, with placeholder seal keys.
	s := pl.session(func(dkg.Member) []byte { return make([]byte, 32) })
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("dkgnet: session file: %w", err)
	}
	canon, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	pl.hash = sha256.Sum256(append([]byte(sessionContext), canon...))
	n := len(s.Members)
	if s.Reshare != nil {
		n = max(n, len(s.Reshare.Dealers))
	}
	pl.maxMsg = 1024 + 400*n + 48*s.Threshold
	return pl, nil
}

// session returns the dkg.Session with each member's seal key from seal.
func (pl *plan) session(seal func(dkg.Member) []byte) *dkg.Session {
	s := pl.base
	s.Members = nil
	for _, m := range pl.base.Members {
		m.SealKey = seal(m)
		s.Members = append(s.Members, m)
	}
	return &s
}
