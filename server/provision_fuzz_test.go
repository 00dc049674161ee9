package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// provisionFixture is a domain of two DTAs whose secrets the test holds (no DTA
// runs): their master shares s_i, whose commitments the bundle publishes, and their
// log signing keys.
type provisionFixture struct {
	b         *bundle.Bundle
	registrar ed25519.PrivateKey
	master    []*pairing.Scalar
	signing   []ed25519.PrivateKey
}

func newProvisionFixture(f *testing.F) *provisionFixture {
	_, registrar, _ := ed25519.GenerateKey(nil)
	x := &provisionFixture{registrar: registrar}
	b := &bundle.Bundle{Version: 1, Protocol: pairing.ProtocolVersion, Domain: "fuzz-provision.example.com", Mode: "additive", Threshold: 2,
		RegistrarKey: hex.EncodeToString(registrar.Public().(ed25519.PublicKey))}
	for i := uint32(1); i <= 2; i++ {
		s, err := pairing.RandomScalar(nil)
		if err != nil {
			f.Fatal(err)
		}
		pub, key, _ := ed25519.GenerateKey(nil)
		x.master, x.signing = append(x.master, s), append(x.signing, key)
		b.DTAs = append(b.DTAs, bundle.DTA{Index: i, URL: fmt.Sprintf("http://dta%d.test", i),
			Commitment: hex.EncodeToString(pairing.G1Generator().Mul(s).Bytes()), SigningKey: hex.EncodeToString(pub),
			LogOrigin: fmt.Sprintf("dta%d.test/log", i)})
	}
	file, _, err := bundle.Sign(b, registrar)
	if err != nil {
		f.Fatal(err)
	}
	if x.b, err = bundle.Parse(file); err != nil {
		f.Fatal(err)
	}
	return x
}

// fixedNonce is what crypto/rand reads while fetchServerShare runs in the fuzz test,
// and bubbleStart the time of a synctest bubble (midnight UTC, 1 January 2000): the
// server ticket it signs (a random nonce, an expiry ten minutes from now) is then the
// same at every run, and an answer can be made for it ahead, as its DTA would.
type fixedNonce struct{}

func (fixedNonce) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 0x5a
	}
	return len(b), nil
}

var bubbleStart = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// serverTicket is the ticket fetchServerShare signs for pub in a bubble, under
// fixedNonce.
func (x *provisionFixture) serverTicket(f *testing.F, pub []byte) string {
	n := make([]byte, 16) // ticket.Sign's nonce
	fixedNonce{}.Read(n)
	nonce := hex.EncodeToString(n)
	tk, err := ticket.Sign(ticket.Ticket{Domain: x.b.Domain, Kind: ticket.KindServer, SealKey: hex.EncodeToString(pub),
		NotAfter: bubbleStart.Add(10 * time.Minute), Nonce: nonce}, x.registrar)
	if err != nil {
		f.Fatal(err)
	}
	return tk
}

// answer is DTA dta's answer to tk (issued by DTA by, share plain, sealed to pub),
// changed by mod once sealed and before its entry is promised.
func (x *provisionFixture) answer(f *testing.F, tk string, pub []byte, dta, by int, plain []byte, mod func(*wire.DTAShare)) []byte {
	th := sha256.Sum256([]byte(tk))
	sealed, err := wire.Seal(pub, &wire.SealContext{Domain: x.b.Domain, DTA: uint32(dta), Kind: wire.KindServer, TicketSHA256: th}, plain)
	if err != nil {
		f.Fatal(err)
	}
	sh := sha256.Sum256(sealed)
	e := wire.Entry{Version: wire.EntryVersion, DTA: uint32(dta), Domain: x.b.Domain, Kind: wire.KindServer,
		SealedSHA256: hex.EncodeToString(sh[:]), TicketSHA256: hex.EncodeToString(th[:]), Time: bubbleStart.Unix()}
	entry, err := e.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	s := wire.DTAShare{Sealed: sealed, Entry: entry}
	if mod != nil {
		mod(&s)
	}
	s.Promise = wire.NewPromise(x.signing[by-1], x.b.DTAs[by-1].LogOrigin, 41, s.Entry)
	b, err := json.Marshal(wire.DTAResponse{DTA: uint32(dta), Shares: []wire.DTAShare{s}})
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// dtaAnswer is a DTA in memory that answers body (with status 200) and records the
// ticket it was sent, so that the test can check it is the one the answer was made
// for; no request leaves the process.
type dtaAnswer struct {
	body   []byte
	ticket string
}

func (d *dtaAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	var req wire.DTARequest
	json.NewDecoder(r.Body).Decode(&req)
	r.Body.Close()
	d.ticket = req.Ticket
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(d.body)), ContentLength: int64(len(d.body)), Request: r}, nil
}

// FuzzServerShareAnswer: whatever a DTA (or someone between it and the server)
// answers to the server-key-share request, fetchServerShare refuses it with an error
// that does not hold the ticket, or accepts the DTA's one share s_i·Q, from an answer
// whose sealed share opens for this ticket and key, whose log entry describes exactly
// this issuance by this DTA and whose promise is signed by the DTA's key in the bundle
// for its log; the log index returned is the promise's.
func FuzzServerShareAnswer(f *testing.F) {
	x := newProvisionFixture(f)
	pub, priv, err := wire.NewSealKey()
	if err != nil {
		f.Fatal(err)
	}
	tk := x.serverTicket(f, pub)
	q := func(i int) []byte { return pairing.G2Generator().Mul(x.master[i-1]).Bytes() }
	valid := x.answer(f, tk, pub, 1, 1, q(1), nil)
	f.Add(valid)
	f.Add(x.answer(f, tk, pub, 1, 1, q(2), nil))                                             // DTA 2's share
	f.Add(x.answer(f, tk, pub, 1, 2, q(1), nil))                                             // promised by DTA 2
	f.Add(x.answer(f, tk, pub, 2, 2, q(2), nil))                                             // DTA 2's answer
	f.Add(x.answer(f, x.serverTicket(f, bytes.Repeat([]byte{1}, 32)), pub, 1, 1, q(1), nil)) // another ticket's
	f.Add(x.answer(f, tk, pub, 1, 1, pairing.G2Generator().Mul(pairing.NewScalar(0)).Bytes(), nil))
	f.Add(x.answer(f, tk, pub, 1, 1, q(1)[:10], nil))
	f.Add(x.answer(f, tk, pub, 1, 1, q(1), func(s *wire.DTAShare) { s.Entry = append(s.Entry, ' ') }))
	f.Add(x.answer(f, tk, pub, 1, 1, q(1), func(s *wire.DTAShare) { s.Slot = 1 }))
	f.Add(bytes.Replace(valid, []byte(`"promise":{`), []byte(`"promise":null,"x":{`), 1))
	f.Add(bytes.Replace(valid, []byte(`"shares":[`), []byte(`"shares":[{},`), 1))
	f.Add([]byte(`{"dta":1,"shares":[{"sealed":"AAAA","entry":"e30=","promise":null}]}`))
	f.Add([]byte(`{"dta":1,"shares":null}`))
	f.Add([]byte(`null`))
	f.Add([]byte{})
	d := &x.b.DTAs[0]
	want := pairing.G2Generator().Mul(x.master[0])
	dtaKey, _ := d.PublicKey()
	f.Fuzz(func(t *testing.T, body []byte) {
		synctest.Test(t, func(t *testing.T) {
			dta := &dtaAnswer{body: body}
			client := &http.Client{Transport: dta}
			share, logged, err := func() (*pairing.G2, uint64, error) {
				saved := rand.Reader
				rand.Reader = fixedNonce{}
				defer func() { rand.Reader = saved }()
				return fetchServerShare(context.Background(), client, x.b, d, x.registrar, pub, priv)
			}()
			if dta.ticket != tk {
				t.Fatalf("the server sent another ticket than the answer was made for:\n%s\n%s", dta.ticket, tk)
			}
			if err != nil {
				if share != nil || logged != 0 || err.Error() == "" || strings.Contains(err.Error(), tk) {
					t.Fatalf("refused with %v, %d, %q", share, logged, err)
				}
				return
			}
			var r wire.DTAResponse
			if err := json.Unmarshal(body, &r); err != nil || r.DTA != d.Index || len(r.Shares) != 1 {
				t.Fatalf("accepted an answer that is not one share of DTA %d (%v)", d.Index, err)
			}
			sh := r.Shares[0]
			if sh.Slot != 0 {
				t.Fatalf("accepted a server share for slot %d", sh.Slot)
			}
			if !share.Equal(want) {
				t.Fatal("accepted a share that is not the DTA's")
			}
			th := sha256.Sum256([]byte(tk))
			if plain, err := wire.Open(priv, &wire.SealContext{Domain: x.b.Domain, DTA: d.Index, Kind: wire.KindServer, TicketSHA256: th}, sh.Sealed); err != nil ||
				!bytes.Equal(plain, want.Bytes()) {
				t.Fatalf("accepted a share that was not sealed for this ticket (%v)", err)
			}
			e, err := wire.ParseEntry(sh.Entry)
			ss := sha256.Sum256(sh.Sealed)
			if err != nil || e.DTA != d.Index || e.Domain != x.b.Domain || e.Kind != wire.KindServer || e.Subject != "" ||
				e.SealedSHA256 != hex.EncodeToString(ss[:]) || e.TicketSHA256 != hex.EncodeToString(th[:]) {
				t.Fatalf("accepted a share whose entry does not describe it: %s (%v)", sh.Entry, err)
			}
			if sh.Promise == nil || sh.Promise.Origin != d.LogOrigin || sh.Promise.Verify(dtaKey, sh.Entry) != nil || logged != sh.Promise.Index {
				t.Fatalf("accepted a share without the DTA's promise of its entry (logged %d)", logged)
			}
		})
	})
}
