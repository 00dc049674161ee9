package client

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// fuzzClient opens a client on a fresh in-memory storage that has pinned d's bundle,
// with token (if not nil) as its token file: what every fuzz test here starts from.
func fuzzClient(d *testdomain.Domain, token []byte) (*Client, *memStorage, error) {
	st := newMemStorage()
	st.files[BundleFile] = d.BundleFile
	st.files[FingerprintFile] = []byte(d.Fingerprint + "\n")
	if token != nil {
		st.files[TokenFile] = token
	}
	c, err := OpenStorage(st, WithInsecureDTAHTTP())
	return c, st, err
}

// FuzzTokenFile: a token file (which a backup, a sync tool or another program may
// have written) either opens the client with a clear error or loads a token that,
// saved again, loads the same; Status never panics on what it holds.
func FuzzTokenFile(f *testing.F) {
	d := testdomain.New(f, "fuzz-token.example.com", 2, 3600)
	_, sealPriv, err := wire.NewSealKey()
	if err != nil {
		f.Fatal(err)
	}
	notAfter := time.Unix(1_900_000_000, 0).UTC()
	st := tokenState{Version: tokenVersion, BundleFingerprint: d.Fingerprint, Domain: d.Name, ID: "alice",
		IDHash: strings.Repeat("ab", 32), NotAfter: &notAfter, Token: pairing.G1Generator().Bytes(), SealKey: sealPriv,
		Permits:  map[uint64][]byte{500_000: pairing.G1Generator().Bytes(), 1 << 40: {1, 2}},
		Receipts: []Receipt{{DTA: 1, Kind: "client", Entry: []byte(`{}`), Promise: &wire.Promise{Origin: "o"}}}}
	good, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"version": 2`), []byte(`"version": 1`), 1))
	f.Add(bytes.Replace(good, []byte(`"idhash": "ab`), []byte(`"idhash": "zz`), 1))
	f.Add(bytes.Replace(good, []byte(`"token": "`), []byte(`"token": "AA`), 1))
	f.Add(bytes.Replace(good, []byte(`"permits": {`), []byte(`"permits": {"18446744073709551615": "AA==",`), 1))
	f.Add([]byte(`{"version":2,"unknown":1}`))
	f.Add([]byte(`{"version":2} {"version":3}`))
	f.Add([]byte(`null`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, file []byte) {
		c, st, err := fuzzClient(d, file)
		if err != nil {
			if c != nil {
				t.Fatal("an error and a client")
			}
			if !strings.HasPrefix(err.Error(), "client: ") {
				t.Fatalf("an unclear error: %v", err)
			}
			return
		}
		s := c.Status()
		if c.state == nil {
			if s.Enrolled {
				t.Fatal("enrolled without a token")
			}
			return
		}
		if !s.Enrolled || s.IDHash != c.state.IDHash || len(s.Permits) != len(c.state.Permits) {
			t.Fatalf("status %+v of token %+v", s, c.state)
		}
		if hex.EncodeToString(c.id[:]) != strings.ToLower(c.state.IDHash) || !bytes.Equal(c.token.Bytes(), c.state.Token) {
			t.Fatalf("the identity or token loaded differ from the file's")
		}
		if err := saveToken(st, c.state); err != nil {
			t.Fatal(err)
		}
		again, err := loadToken(st)
		if err != nil {
			t.Fatalf("a token file saved again does not load: %v", err)
		}
		a, _ := json.Marshal(c.state)
		b, _ := json.Marshal(again)
		if !bytes.Equal(a, b) {
			t.Fatalf("the token changed on a round trip:\n%s\n%s", a, b)
		}
	})
}

// FuzzPendingFile: whatever the pending-enrolment file holds, the client proves its
// code for seal keys whose public keys it returns, and reuses the file's keys only when
// the file is for this domain and code and its keys are valid X25519 keys (the permit
// key may be absent: an enrolment begun with one key for both).
func FuzzPendingFile(f *testing.F) {
	d := testdomain.New(f, "fuzz-pending.example.com", 2, 0)
	const code = "ABCDEFGHIJKLMNOPQRS2"
	codeID, _ := wire.CodeSecrets(code)
	_, sealPriv, err := wire.NewSealKey()
	if err != nil {
		f.Fatal(err)
	}
	_, permitPriv, err := wire.NewSealKey()
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(pendingEnrolment{Domain: d.Name, CodeID: codeID[:], SealKey: sealPriv, PermitKey: permitPriv, Started: time.Unix(1_800_000_000, 0)})
	f.Add(good)
	legacy, _ := json.Marshal(pendingEnrolment{Domain: d.Name, CodeID: codeID[:], SealKey: sealPriv, Started: time.Unix(1_800_000_000, 0)})
	f.Add(legacy)
	badPermit, _ := json.Marshal(pendingEnrolment{Domain: d.Name, CodeID: codeID[:], SealKey: sealPriv, PermitKey: []byte{1}})
	f.Add(badPermit)
	f.Add(bytes.Replace(good, []byte(d.Name), []byte("other.example.com"), 1))
	bad, _ := json.Marshal(pendingEnrolment{Domain: d.Name, CodeID: codeID[:], SealKey: []byte{1, 2, 3}})
	f.Add(bad)
	f.Add([]byte(`{"domain":1}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, file []byte) {
		c, st, err := fuzzClient(d, nil)
		if err != nil {
			t.Fatal(err)
		}
		st.files[PendingFile] = file
		k, err := c.pendingFor(code)
		if err != nil {
			t.Fatal(err)
		}
		if want, err := wire.SealPublicKey(k.clientPriv); err != nil || !bytes.Equal(want, k.clientPub) {
			t.Fatalf("seal key %x does not go with %x (%v)", k.clientPub, want, err)
		}
		if k.permitPriv != nil {
			if want, err := wire.SealPublicKey(k.permitPriv); err != nil || !bytes.Equal(want, k.permitPub) || bytes.Equal(k.permitPriv, k.clientPriv) {
				t.Fatalf("permit key %x does not go with %x (%v), or is the client key", k.permitPub, want, err)
			}
		}
		var p pendingEnrolment
		reused := json.Unmarshal(file, &p) == nil && p.Domain == d.Name && bytes.Equal(p.CodeID, codeID[:]) &&
			bytes.Equal(p.SealKey, k.clientPriv) && bytes.Equal(p.PermitKey, k.permitPriv)
		if !reused {
			var kept pendingEnrolment
			if json.Unmarshal(st.files[PendingFile], &kept) != nil || !bytes.Equal(kept.SealKey, k.clientPriv) ||
				!bytes.Equal(kept.PermitKey, k.permitPriv) || k.permitPriv == nil || !bytes.Equal(kept.CodeID, codeID[:]) {
				t.Fatalf("new seal keys that are not recorded, or one key for both: %s", st.files[PendingFile])
			}
		}
		// The file's own keys, when valid and for this code, are the ones reused.
		if json.Unmarshal(file, &p) == nil && p.Domain == d.Name && bytes.Equal(p.CodeID, codeID[:]) {
			_, errClient := wire.SealPublicKey(p.SealKey)
			_, errPermit := wire.SealPublicKey(p.PermitKey)
			if errClient == nil && (p.PermitKey == nil || errPermit == nil) && !reused {
				t.Fatal("the pending enrolment's valid keys were not reused")
			}
		}
	})
}

// FuzzDTAAnswer: whatever a DTA (or someone between it and the client) answers to a
// client ticket, check refuses it with an error or accepts exactly one share, which
// then is the DTA's one true share for this identity (its DLEQ proof ties it to the
// bundle's commitment), with a log entry that parses.
func FuzzDTAAnswer(f *testing.F) {
	d := testdomain.New(f, "fuzz-answer.example.com", 2, 0)
	c, _, err := fuzzClient(d, nil)
	if err != nil {
		f.Fatal(err)
	}
	sealPub, sealPriv, err := wire.NewSealKey()
	if err != nil {
		f.Fatal(err)
	}
	var salt [16]byte
	rand.Read(salt[:])
	id, err := pairing.NewIDHash(d.Name, "alice", salt[:])
	if err != nil {
		f.Fatal(err)
	}
	tk, err := ticket.Sign(ticket.Ticket{Domain: d.Name, Kind: ticket.KindClient, IDHash: hex.EncodeToString(id[:]),
		SealKey: hex.EncodeToString(sealPub), NotAfter: time.Now().Add(time.Hour)}, d.Registrar)
	if err != nil {
		f.Fatal(err)
	}
	reqBody, _ := json.Marshal(wire.DTARequest{Ticket: tk})
	resp, err := http.Post(d.DTAs[0].URL+"/v1/shares/client", "application/json", bytes.NewReader(reqBody))
	if err != nil {
		f.Fatal(err)
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		f.Fatalf("the DTA answered %d %s (%v)", resp.StatusCode, answer, err)
	}
	j := job{kind: wire.KindClient, ticket: tk}
	rec := &d.Bundle.DTAs[0]
	var valid wire.DTAResponse
	if err := json.Unmarshal(answer, &valid); err != nil {
		f.Fatal(err)
	}
	j.key = sealPriv
	shares, err := c.check(rec, id, j, &valid)
	if err != nil || len(shares) != 1 {
		f.Fatalf("the DTA's own answer does not check: %v", err)
	}
	want := shares[0].share
	f.Add(answer)
	f.Add(bytes.Replace(answer, []byte(`"dta":1`), []byte(`"dta":2`), 1))
	f.Add(bytes.Replace(answer, []byte(`"shares":[`), []byte(`"shares":[{},`), 1))
	f.Add([]byte(`{"dta":1,"shares":[{"sealed":"AAAA","entry":"e30=","promise":null}]}`))
	f.Add([]byte(`{"dta":1,"shares":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var r wire.DTAResponse
		if json.Unmarshal(body, &r) != nil {
			return // postJSON answers a malformedError before check
		}
		got, err := c.check(rec, id, j, &r)
		if err != nil {
			if got != nil {
				t.Fatal("an error and shares")
			}
			return
		}
		if len(got) != 1 || got[0].slot != 0 || !got[0].share.Equal(want) {
			t.Fatalf("accepted %d shares, not the DTA's share", len(got))
		}
		e, err := wire.ParseEntry(got[0].receipt.Entry)
		if err != nil || e.DTA != 1 || e.Kind != wire.KindClient || e.SealedSHA256 != hex.EncodeToString(sum(r.Shares[0].Sealed)) {
			t.Fatalf("accepted a share whose entry does not describe it: %v", err)
		}
	})
}

// sum is sha256.Sum256 as a slice, for comparing with hex digests.
func sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}
