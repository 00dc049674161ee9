package client

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// registrarAnswer is an auth server in memory that answers every enrolment with body
// (200) and everything else, the bundle a client that finds another fingerprint asks
// for included, with 404: the fuzzed answer reaches Enroll exactly as sent, and no
// request leaves the process.
type registrarAnswer []byte

func (b registrarAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	status, body := http.StatusNotFound, []byte(`{"code":"not_found","message":"no such route"}`)
	if r.Method == http.MethodPost && r.URL.Path == "/v1/enrol" {
		status, body = http.StatusOK, b
	}
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

// enrolFixture is one domain (two running DTAs, on loopback) and one redemption of
// a code: the code, the client's seal keys of its client shares and of its permits
// (which the pending file holds, so that every run proves the code for the same keys),
// and another code and client key to replay to.
type enrolFixture struct {
	d                     *testdomain.Domain
	code, otherCode       string
	sealPub, sealPriv     []byte
	permitPub, permitPriv []byte
	otherPriv             []byte // another client's seal key
}

// pendingFile is the pending enrolment of code with client-share key priv and the
// fixture's permit key, as pendingFor writes it.
func (x *enrolFixture) pendingFile(code string, priv []byte) []byte {
	norm, _ := wire.NormalizeCode(code)
	id, _ := wire.CodeSecrets(norm)
	b, _ := json.Marshal(pendingEnrolment{Domain: x.d.Name, CodeID: id[:], SealKey: priv, PermitKey: x.permitPriv, Started: time.Unix(1_800_000_000, 0)})
	return b
}

// client opens a client on fresh storage that pinned the domain's bundle and holds
// the pending enrolment of code with priv, whose auth server answers body.
func (x *enrolFixture) client(code string, priv []byte, body []byte) (*Client, *memStorage, error) {
	st := newMemStorage()
	st.files[BundleFile] = x.d.BundleFile
	st.files[FingerprintFile] = []byte(x.d.Fingerprint + "\n")
	st.files[PendingFile] = x.pendingFile(code, priv)
	c, err := OpenStorage(st, WithInsecureDTAHTTP(), WithInsecureHTTP(), WithDTATimeout(30*time.Second),
		WithServerClient(&http.Client{Transport: registrarAnswer(body)}))
	return c, st, err
}

// pkg is the registrar's package for a new identity id redeemed for sealPub and the
// fixture's permit key, its permit ticket naming permitPub, changed by mod before its
// MAC under code is made (mod may make it wrong in any way the registrar itself could).
func (x *enrolFixture) pkg(f *testing.F, id string, device bool, sealPub, permitPub []byte, code string, mod func(*wire.EnrolPackage)) []byte {
	salt := make([]byte, 16)
	rand.Read(salt)
	h, err := pairing.NewIDHash(x.d.Name, id, salt)
	if err != nil {
		f.Fatal(err)
	}
	idHex := hex.EncodeToString(h[:])
	notAfter := time.Now().Add(24 * time.Hour) // past the longest fuzzing run
	ct, err := ticket.Sign(ticket.Ticket{Domain: x.d.Name, Kind: ticket.KindClient, IDHash: idHex,
		SealKey: hex.EncodeToString(sealPub), NotAfter: notAfter}, x.d.Registrar)
	if err != nil {
		f.Fatal(err)
	}
	first := pairing.Domain{Name: x.d.Name, PermitPeriod: x.d.PermitPeriod}.Slot(time.Now())
	pt, err := ticket.Sign(ticket.Ticket{Domain: x.d.Name, Kind: ticket.KindPermit, IDHash: idHex, FirstSlot: first, LastSlot: first + 1,
		SealKey: hex.EncodeToString(permitPub), NotAfter: notAfter}, x.d.Registrar)
	if err != nil {
		f.Fatal(err)
	}
	p := wire.EnrolPackage{Domain: x.d.Name, ID: id, Salt: salt, IDHash: idHex, Device: device, ClientTicket: ct,
		PermitTicket: pt, FirstSlot: first, LastSlot: first + 1, BundleFingerprint: x.d.Fingerprint}
	if mod != nil {
		mod(&p)
	}
	norm, _ := wire.NormalizeCode(code)
	_, key := wire.CodeSecrets(norm)
	p.MAC = wire.PackageMAC(key, &p, sealPub, x.permitPub)
	b, err := json.Marshal(&p)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// enrolPIN is the PIN of an enrolment that is not a device's.
func enrolPIN(device bool) []byte {
	if device {
		return nil
	}
	return []byte("4921")
}

// refusedCleanly fails t unless err is a clear client error and st holds exactly the
// files it held before the enrolment (before): a refused answer leaves no trace.
func refusedCleanly(t *testing.T, err error, st *memStorage, before map[string][]byte) {
	t.Helper()
	if !strings.HasPrefix(err.Error(), "client: ") {
		t.Fatalf("an unclear error: %v", err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if !maps.EqualFunc(st.files, before, bytes.Equal) {
		t.Fatalf("a refused enrolment (%v) changed the client's files: %v", err, slices.Sorted(maps.Keys(st.files)))
	}
}

// FuzzEnrolPackage: whatever the auth server (or someone between it and the client)
// answers to the redemption of one code for one client key, Enroll refuses it with a
// clear error ("client: …") and the client's files as they were, or accepts it only
// if it decodes to a package whose MAC verifies under that code for that key and whose
// tickets are the registrar's for its identity and that key: then the token saved is
// that package's identity, and the same answer is refused for any other code or key.
// A package the client accepted encodes again to one it accepts for the same identity.
func FuzzEnrolPackage(f *testing.F) {
	x := &enrolFixture{d: testdomain.New(f, "fuzz-enrol.example.com", 2, 3600),
		code: "ABCDEFGHIJKLMNOPQRS2", otherCode: "ZYXWVUTSRQPONMLKJIH7"}
	var err error
	if x.sealPub, x.sealPriv, err = wire.NewSealKey(); err != nil {
		f.Fatal(err)
	}
	if x.permitPub, x.permitPriv, err = wire.NewSealKey(); err != nil {
		f.Fatal(err)
	}
	if _, x.otherPriv, err = wire.NewSealKey(); err != nil {
		f.Fatal(err)
	}
	otherPub, _ := wire.SealPublicKey(x.otherPriv)
	person := x.pkg(f, "alice@example.com", false, x.sealPub, x.permitPub, x.code, nil)
	f.Add(person, false)
	f.Add(x.pkg(f, "door-7", true, x.sealPub, x.permitPub, x.code, nil), true)
	f.Add(x.pkg(f, "temp@example.com", false, x.sealPub, x.permitPub, x.code, func(p *wire.EnrolPackage) {
		na := time.Now().Add(48 * time.Hour).In(time.FixedZone("x", 3600))
		p.NotAfter = &na
	}), false)
	f.Add(person, true) // the wrong kind
	f.Add(bytes.Replace(person, []byte(`"mac":"`), []byte(`"mac":"AAAA`), 1), false)
	f.Add(bytes.Replace(person, []byte(`"alice@`), []byte(`"alicf@`), 1), false)
	f.Add(x.pkg(f, "alice@example.com", false, x.sealPub, x.permitPub, x.otherCode, nil), false) // another code's
	f.Add(x.pkg(f, "alice@example.com", false, otherPub, x.permitPub, x.code, nil), false)       // another key's
	f.Add(x.pkg(f, "alice@example.com", false, x.sealPub, x.permitPub, x.code, func(p *wire.EnrolPackage) {
		p.ClientTicket, p.PermitTicket = p.PermitTicket, p.ClientTicket
	}), false)
	f.Add(x.pkg(f, "alice@example.com", false, x.sealPub, x.permitPub, x.code, func(p *wire.EnrolPackage) { p.LastSlot = p.FirstSlot + maxPermitSlots }), false)
	f.Add(x.pkg(f, "alice@example.com", false, x.sealPub, x.permitPub, x.code, func(p *wire.EnrolPackage) { p.Salt = p.Salt[:15] }), false)
	f.Add(x.pkg(f, "alice@example.com", false, x.sealPub, x.permitPub, x.code, func(p *wire.EnrolPackage) {
		na := time.Now().Add(-time.Minute)
		p.NotAfter = &na
	}), false)
	f.Add(x.pkg(f, "alice@example.com", false, x.sealPub, x.permitPub, x.code, func(p *wire.EnrolPackage) { p.BundleFingerprint = strings.Repeat("ab", 32) }), false)
	f.Add(x.pkg(f, "alice@example.com", false, x.sealPub, x.sealPub, x.code, nil), false) // permits sealed to the client shares' key
	f.Add([]byte(`{"mac":null}`), false)
	f.Add([]byte(`null`), false)
	f.Add([]byte{}, false)
	norm, _ := wire.NormalizeCode(x.code)
	_, codeKey := wire.CodeSecrets(norm)
	ctx := context.Background()
	// The valid package must enrol, or every seed would be refused and prove nothing.
	if c, _, err := x.client(x.code, x.sealPriv, person); err != nil {
		f.Fatal(err)
	} else if err := c.Enroll(ctx, "http://127.0.0.1:1", x.code, enrolPIN(false), false); err != nil {
		f.Fatalf("the registrar's valid package is refused: %v", err)
	}
	f.Fuzz(func(t *testing.T, body []byte, device bool) {
		c, st, err := x.client(x.code, x.sealPriv, body)
		if err != nil {
			t.Fatal(err)
		}
		before := maps.Clone(st.files)
		err = c.Enroll(ctx, "http://127.0.0.1:1", x.code, enrolPIN(device), device)
		if err != nil {
			refusedCleanly(t, err, st, before)
			return
		}
		// Accepted: the answer is the registrar's for this code and key.
		var p wire.EnrolPackage
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("accepted an answer that does not decode: %v", err)
		}
		if !hmac.Equal(p.MAC, wire.PackageMAC(codeKey, &p, x.sealPub, x.permitPub)) {
			t.Fatal("accepted a package whose MAC is not for this code and key")
		}
		id, err := pairing.NewIDHash(x.d.Name, p.ID, p.Salt)
		if err != nil || hex.EncodeToString(id[:]) != p.IDHash || p.Device != device {
			t.Fatalf("accepted a package for another identity or kind (%v)", err)
		}
		now := time.Now()
		for _, tk := range []struct {
			kind, s     string
			key         []byte
			first, last uint64
		}{{ticket.KindClient, p.ClientTicket, x.sealPub, 0, 0}, {ticket.KindPermit, p.PermitTicket, x.permitPub, p.FirstSlot, p.LastSlot}} {
			v, err := ticket.Verify(tk.s, x.d.Bundle.RegistrarPublicKey(), x.d.Name, tk.kind, now)
			if err != nil || v.IDHash != p.IDHash || v.SealKey != hex.EncodeToString(tk.key) || v.FirstSlot != tk.first || v.LastSlot != tk.last {
				t.Fatalf("accepted a package whose %s ticket is not for it (%v)", tk.kind, err)
			}
		}
		s := c.Status()
		if !s.Enrolled || s.ID != p.ID || s.IDHash != p.IDHash || s.Device != device || (s.NotAfter == nil) != (p.NotAfter == nil) ||
			s.NotAfter != nil && !s.NotAfter.Equal(*p.NotAfter) || len(s.Permits) != 2 {
			t.Fatalf("enrolled %+v from package %+v", s, p)
		}
		if _, err := st.Load(PendingFile); err == nil {
			t.Fatal("the pending enrolment stayed after the enrolment completed")
		}
		if tok, err := loadToken(st); err != nil || tok == nil || !bytes.Equal(tok.SealKey, x.permitPriv) {
			t.Fatalf("the token file does not keep the permit key alone (%v)", err)
		}
		again, err := OpenStorage(st, WithInsecureDTAHTTP())
		if err != nil || again.Status().IDHash != p.IDHash {
			t.Fatalf("the token saved does not open as this identity: %v", err)
		}
		// The same answer, for another code or another client key: refused, no trace.
		for _, o := range []struct {
			code string
			priv []byte
		}{{x.otherCode, x.sealPriv}, {x.code, x.otherPriv}} {
			c2, st2, err := x.client(o.code, o.priv, body)
			if err != nil {
				t.Fatal(err)
			}
			before := maps.Clone(st2.files)
			err = c2.Enroll(ctx, "http://127.0.0.1:1", o.code, enrolPIN(device), device)
			if !errors.Is(err, ErrPossibleInterception) {
				t.Fatalf("the answer for one code and key accepted for another (%v)", err)
			}
			refusedCleanly(t, err, st2, before)
		}
		// The package as decoded, encoded again: the same identity for this code and key.
		re, err := json.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		var p2 wire.EnrolPackage
		if err := json.Unmarshal(re, &p2); err != nil || !hmac.Equal(p2.MAC, wire.PackageMAC(codeKey, &p2, x.sealPub, x.permitPub)) {
			t.Fatalf("the package encoded again no longer verifies (%v)", err)
		}
		c3, _, err := x.client(x.code, x.sealPriv, re)
		if err != nil {
			t.Fatal(err)
		}
		keys := &sealKeys{clientPub: x.sealPub, clientPriv: x.sealPriv, permitPub: x.permitPub, permitPriv: x.permitPriv}
		if id3, err := c3.checkPackage(&p2, device, keys); err != nil || id3 != id {
			t.Fatalf("the package encoded again does not check: %v", err)
		}
	})
}
