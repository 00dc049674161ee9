package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// The enrolment and code records of the bolt store are JSON, read by json.Unmarshal
// in the store's own methods. The PostgreSQL store keeps the same JSON in its record
// columns and decodes it into the same types with the same json.Unmarshal, but in its
// own methods (pgEnrolment, pgStore.redeem, pgStore.listEnrolments): only redeemCode,
// which decides a redemption once the code is decoded, is shared. These targets run
// the bolt store's methods; what they find about the encoding holds for both.

// fuzzStoreAt opens a bolt store at path for a fuzz target, without syncing its
// writes: a target writes the fuzzed record and reads it back many times a second,
// and nothing of it has to survive a crash (openStore syncs, as a server must).
func fuzzStoreAt(tb testing.TB, path string) *boltStore {
	st, err := openStore(path, time.Minute)
	if err != nil {
		tb.Fatal(err)
	}
	st.db.NoSync = true
	return st
}

// putStored writes raw values into the buckets of st as they are found on disk: the
// bytes that the store's readers decode, whoever wrote them.
func putStored(t *testing.T, st *boltStore, bucket []byte, kv ...[]byte) {
	err := st.db.Update(func(tx *bolt.Tx) error {
		for i := 0; i < len(kv); i += 2 {
			if err := tx.Bucket(bucket).Put(kv[i], kv[i+1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// stored returns the value under key in bucket (nil if none), copied out of the
// transaction.
func stored(t *testing.T, st *boltStore, bucket, key []byte) []byte {
	var v []byte
	err := st.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucket).Get(key); b != nil {
			v = bytes.Clone(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sameTime compares two optional times by the instant: a record read back holds its
// times in whatever location the offset it was written with gives (UTC, Local or a
// fixed zone), which is the same instant.
func sameTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

// sameEnrolment reports whether a and b are the same record to every reader of it.
// The client key is compared by its bytes and whether there is one: a client key
// present but empty ("client_key": "") reads as a redeemed enrolment (redeemCode and
// the admin API test ClientKey against nil) but is omitted when written back, and so
// reads as one never redeemed. The server never writes such a record (a redeem
// request's key is 32 bytes: admin.go), so a record that has one is outside what the
// round trip is checked for, and is treated as having no key.
func sameEnrolment(a, b *enrolment) bool {
	return a.ID == b.ID && bytes.Equal(a.Salt, b.Salt) && (a.Salt == nil) == (b.Salt == nil) &&
		a.Device == b.Device && sameTime(a.NotAfter, b.NotAfter) && a.PermitDays == b.PermitDays &&
		a.Created.Equal(b.Created) && sameTime(a.Revoked, b.Revoked) &&
		bytes.Equal(a.ClientKey, b.ClientKey) && (len(a.ClientKey) == 0) == (len(b.ClientKey) == 0) &&
		bytes.Equal(a.permitKey(), b.permitKey())
}

// FuzzEnrolmentRecord: an enrolment record read from the bolt store (by enrolment,
// listEnrolments, revoke, and, with reopen, the index rebuild of openStore) either is
// refused, by every one of them, with the error of the JSON decoder, or reads as what
// the decoder makes of it, encodes to a value that reads the same (and encodes to
// itself), and is written back by revoke with only the revocation added. reopen is a
// parameter because a reopen syncs the file: it would slow every input threefold.
func FuzzEnrolmentRecord(f *testing.F) {
	created := time.Unix(1_800_000_000, 0).UTC()
	notAfter, revoked := created.Add(48*time.Hour), created.Add(time.Hour)
	for _, e := range []enrolment{
		{ID: "grace", Salt: []byte{1, 2, 3}, PermitDays: 5, Created: created},
		{ID: "heidi", Salt: bytes.Repeat([]byte{7}, 32), Device: true, NotAfter: &notAfter, Revoked: &revoked,
			PermitDays: 1, Created: created, ClientKey: bytes.Repeat([]byte{1}, 32), PermitKey: bytes.Repeat([]byte{2}, 32)},
		{},
	} {
		b, err := json.Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
		f.Add(b, false)
		f.Add(b[:len(b)/2], true)
	}
	f.Add([]byte(`{"id":"ivan","created":"0000-01-01T00:00:00+23:59","not_after":null,"salt":""}`), true)
	f.Add([]byte(`{"permit_days":1e99,"revoked":"9999-12-31T23:59:59-23:59"}`), false)
	f.Add([]byte(`{"client_key":"","permit_key":""}`), false)
	f.Add([]byte(`null`), true)
	f.Add([]byte(`[]`), true)
	f.Add([]byte{}, true)

	path := filepath.Join(f.TempDir(), "server.db")
	st := fuzzStoreAt(f, path)
	f.Cleanup(func() { st.close() })
	id := pairing.IDHash{0xe5, 1}
	now := created.Add(24 * time.Hour)
	f.Fuzz(func(t *testing.T, v []byte, reopen bool) {
		putStored(t, st, bucketEnrolments, id[:], v)
		var want enrolment
		decErr := json.Unmarshal(v, &want)
		e, err := st.enrolment(id)
		if decErr != nil || err != nil {
			if e != nil || !sameError(err, decErr) {
				t.Fatalf("enrolment: %+v, %v; the decoder: %v", e, err, decErr)
			}
			if l, err := st.listEnrolments(nil, 10); !sameError(err, decErr) {
				t.Fatalf("listing a record that does not decode: %+v, %v", l, err)
			}
			if err := st.revoke(id, now); !sameError(err, decErr) {
				t.Fatalf("revoking a record that does not decode: %v", err)
			}
			if reopen {
				st = reopenWithoutIndex(t, st, path, id, false)
			}
			return
		}
		if !sameEnrolment(e, &want) {
			t.Fatalf("read %+v, the decoder makes %+v", e, &want)
		}

		// The record encodes to a value that reads the same, and is its own encoding.
		enc, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("a record read from the store does not encode: %v", err)
		}
		var e2 enrolment
		if err := json.Unmarshal(enc, &e2); err != nil || !sameEnrolment(e, &e2) {
			t.Fatalf("the record changed on a round trip: %+v, %+v (%v)", e, &e2, err)
		}
		if enc2, err := json.Marshal(&e2); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("the encoding of the record changed: %s, %s (%v)", enc, enc2, err)
		}
		if e.usable(now) != e2.usable(now) {
			t.Fatalf("usable changed on a round trip: %+v, %+v", e, &e2)
		}

		l, err := st.listEnrolments(nil, 10)
		if err != nil || len(l) != 1 || l[0].id != id || !sameEnrolment(l[0].e, e) || l[0].fails != (failRecord{}) {
			t.Fatalf("listed %+v, %v", l, err)
		}

		if reopen {
			st = reopenWithoutIndex(t, st, path, id, true)
			if ids, err := st.enrolmentsOf(e.ID); err != nil || !slices.Equal(ids, []pairing.IDHash{id}) {
				t.Fatalf("the rebuilt index has %v for %q (%v)", ids, e.ID, err)
			}
		}

		// revoke writes the record back, with the first revocation kept.
		if err := st.revoke(id, now); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		r, err := st.enrolment(id)
		if err != nil {
			t.Fatalf("the revoked record does not read: %v", err)
		}
		if e.Revoked == nil {
			e.Revoked = &now
		}
		if !sameEnrolment(r, e) || r.usable(now) {
			t.Fatalf("revoke wrote %+v for %+v", r, e)
		}
	})
}

// reopenWithoutIndex deletes the index of the enrolments of each ID, closes st and
// opens its file again, which rebuilds the index from the one enrolment record under
// id (openStore's migration of a database from before the index), and returns the
// store opened. The open fails if and only if the record does not decode (ok false),
// or its ID is too long for a bolt key; the record is then deleted, with bolt directly,
// for the next input to find a store that opens.
func reopenWithoutIndex(t *testing.T, st *boltStore, path string, id pairing.IDHash, ok bool) *boltStore {
	var e enrolment
	if ok {
		if err := json.Unmarshal(stored(t, st, bucketEnrolments, id[:]), &e); err != nil {
			t.Fatal(err)
		}
		ok = len(idKeyPrefix(e.ID))+len(id) <= bolt.MaxKeySize
	}
	if err := st.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketIDEnrolments) }); err != nil {
		t.Fatal(err)
	}
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	st, err := openStore(path, time.Minute)
	if (err == nil) != ok {
		t.Fatalf("opening a store whose enrolment record decodes (%v): %v", ok, err)
	}
	if err == nil {
		st.db.NoSync = true
		return st
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketEnrolments).Delete(id[:]) })
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
	return fuzzStoreAt(t, path)
}

// FuzzPendingCode: a code record read from the bolt store by redeem either is refused
// with the error of the JSON decoder, leaving the code as it was, or is redeemed as
// the decoded record says: an expired code is not found (and left as it is), a code of
// no enrolment is not found, a proof under another key is refused (errCodeProof), the
// code of a redeemed enrolment gives back its stored answer to the same request, and a
// fresh code gets the answer, which is kept with the code, read back and given again
// to the same request. The record encodes to a value that reads the same; pruneCodes
// deletes it if and only if it decodes and has expired. redeemed says whether the
// enrolment of the code has been redeemed, by the request's keys.
func FuzzPendingCode(f *testing.F) {
	const domain = "example.com"
	now := time.Unix(1_800_000_000, 0)
	until := now.Add(time.Hour)
	codeID, proofKey := wire.CodeSecrets("FUZZ-CODE")
	id := pairing.IDHash{0xc0, 2}
	clientKey, permitKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	req := &wire.RedeemRequest{CodeID: codeID[:], ClientKey: clientKey, PermitKey: permitKey,
		Proof: wire.CodeProof(proofKey, domain, clientKey, permitKey)}

	seed := func(pc pendingCode, redeemed bool) {
		b, err := json.Marshal(pc)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, redeemed)
	}
	fresh := pendingCode{IDHash: id, ExpiresAt: now.Add(time.Minute), ProofKey: proofKey}
	seed(fresh, false)
	seed(pendingCode{IDHash: id, ExpiresAt: until, ProofKey: proofKey, Answer: json.RawMessage(`{"a": [1, 2]}`)}, true)
	seed(pendingCode{IDHash: id, ExpiresAt: until, ProofKey: proofKey}, true)
	seed(pendingCode{IDHash: id, ExpiresAt: now, ProofKey: proofKey}, false)
	seed(pendingCode{IDHash: pairing.IDHash{1}, ExpiresAt: until, ProofKey: proofKey}, false)
	seed(pendingCode{IDHash: id, ExpiresAt: until, ProofKey: [32]byte{3}}, false)
	f.Add([]byte(`{"idhash":[192,2],"expires_at":"2030-01-01T00:00:00+05:30","proof_key":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33],"answer":null}`), true)
	f.Add([]byte(`{"idhash":"wAI=","proof_key":[256]}`), false)
	f.Add([]byte(`{"expires_at":"9999-12-31T23:59:59Z","answer":`), false)
	f.Add([]byte{}, false)

	st := fuzzStoreAt(f, filepath.Join(f.TempDir(), "server.db"))
	f.Cleanup(func() { st.close() })
	f.Fuzz(func(t *testing.T, v []byte, redeemed bool) {
		e0 := enrolment{ID: "fuzz", Salt: []byte{1}, Created: now}
		if redeemed {
			e0.ClientKey, e0.PermitKey = clientKey, permitKey
		}
		ej, err := json.Marshal(&e0)
		if err != nil {
			t.Fatal(err)
		}
		putStored(t, st, bucketEnrolments, id[:], ej)
		putStored(t, st, bucketCodes, codeID[:], v)

		var pc pendingCode
		decErr := json.Unmarshal(v, &pc)
		calls := 0
		answer := func(aid pairing.IDHash, e *enrolment, pk [32]byte) (any, time.Time, error) {
			calls++
			if aid != pc.IDHash || pk != pc.ProofKey || !bytes.Equal(e.ClientKey, clientKey) || !bytes.Equal(e.PermitKey, permitKey) {
				t.Fatalf("answer called for %x, %+v, %x; the record is %+v", aid, e, pk, pc)
			}
			return map[string]string{"answer": "fresh"}, until, nil
		}
		e, out, err := st.redeem(req, domain, now, answer)
		code := stored(t, st, bucketCodes, codeID[:])
		switch {
		case decErr != nil:
			if !sameError(err, decErr) || !bytes.Equal(code, v) {
				t.Fatalf("redeem of a record that does not decode: %v, the decoder: %v; the code is now %q", err, decErr, code)
			}
		case !now.Before(pc.ExpiresAt):
			// An expired code stays, unchanged, for pruneCodes.
			if err != errNotFound || !bytes.Equal(code, v) {
				t.Fatalf("redeem of an expired code: %v; the code is now %q", err, code)
			}
		case pc.IDHash != id:
			if err != errNotFound || !bytes.Equal(code, v) {
				t.Fatalf("redeem of the code of no enrolment: %v; the code is now %q", err, code)
			}
		case redeemed:
			if pc.ProofKey != proofKey || pc.Answer == nil {
				if err != errNotFound {
					t.Fatalf("redeem of a redeemed code without its answer: %q, %v", out, err)
				}
			} else if err != nil || !bytes.Equal(out, pc.Answer) || !sameEnrolment(e, &e0) {
				t.Fatalf("redeem again: %+v, %q, %v; the record has %q", e, out, err, pc.Answer)
			}
			if !bytes.Equal(code, v) {
				t.Fatalf("the code changed on a redemption again: %q", code)
			}
		case pc.ProofKey != proofKey:
			if err != errCodeProof || !bytes.Equal(code, v) {
				t.Fatalf("redeem with the proof under another key: %v; the code is now %q", err, code)
			}
		default:
			if err != nil || calls != 1 || string(out) != `{"answer":"fresh"}` || !bytes.Equal(e.ClientKey, clientKey) {
				t.Fatalf("a fresh redemption: %+v, %q, %v (answer called %d times)", e, out, err, calls)
			}
			var kept pendingCode
			if err := json.Unmarshal(code, &kept); err != nil || kept.IDHash != pc.IDHash || kept.ProofKey != pc.ProofKey ||
				!kept.ExpiresAt.Equal(until) || !bytes.Equal(kept.Answer, out) {
				t.Fatalf("the code kept after a redemption: %+v (%v)", kept, err)
			}
			if e2, out2, err := st.redeem(req, domain, now, answer); err != nil || calls != 1 || !bytes.Equal(out2, out) || !sameEnrolment(e2, e) {
				t.Fatalf("the same request again: %+v, %q, %v (answer called %d times)", e2, out2, err, calls)
			}
		}

		if decErr == nil {
			enc, err := json.Marshal(&pc)
			if err != nil {
				t.Fatalf("a code record that decodes does not encode: %v", err)
			}
			var pc2 pendingCode
			if err := json.Unmarshal(enc, &pc2); err != nil || pc2.IDHash != pc.IDHash || pc2.ProofKey != pc.ProofKey ||
				!pc2.ExpiresAt.Equal(pc.ExpiresAt) || !sameAnswer(pc2.Answer, pc.Answer) {
				t.Fatalf("the code record changed on a round trip: %+v, %+v (%v)", pc, pc2, err)
			}
		}

		// pruneCodes, an hour after the answer's tickets expire, deletes what is left of
		// the code if it decodes and has expired by then, and nothing else.
		at := until.Add(time.Hour)
		var left pendingCode
		want := 0
		if code = stored(t, st, bucketCodes, codeID[:]); code != nil && json.Unmarshal(code, &left) == nil && !at.Before(left.ExpiresAt) {
			want = 1
		}
		if n, err := st.pruneCodes(at); err != nil || n != want || (stored(t, st, bucketCodes, codeID[:]) == nil) != (code == nil || want == 1) {
			t.Fatalf("pruneCodes of %q: %d, %v", code, n, err)
		}
	})
}

// sameAnswer compares two stored answers as JSON: encoding a record compacts its
// answer (json.RawMessage), and an answer is only ever given back whole.
func sameAnswer(a, b json.RawMessage) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var ca, cb bytes.Buffer
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}

// sameError reports whether err is the decoder's error decErr, which the store passes
// on as it is: each decoding makes a new error value, so they compare by message.
func sameError(err, decErr error) bool {
	return err != nil && decErr != nil && err.Error() == decErr.Error()
}
