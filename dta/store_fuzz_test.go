package dta

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
)

// fuzzStateStore opens a state database in a temporary directory for a fuzz target,
// without syncing its writes: a target writes the fuzzed values and reads them back
// many times a second, and nothing of it has to survive a crash (openStore syncs, as
// a DTA must).
func fuzzStateStore(f *testing.F) *store {
	st, err := openStore(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	st.db.NoSync = true
	f.Cleanup(func() { st.close() })
	return st
}

// resetState empties every bucket of st, then runs put in the same transaction: each
// input finds only what it writes itself, raw, as the store's readers find it on disk.
func resetState(t *testing.T, st *store, put func(tx *bolt.Tx) error) {
	err := st.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketIssuances, bucketRevoked, bucketExpiry, bucketRounds} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return put(tx)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rawState returns the value under key in bucket, and whether there is one, copied out
// of the transaction.
func rawState(t *testing.T, st *store, bucket, key []byte) ([]byte, bool) {
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
	return v, v != nil
}

// completedAs is r as a reader must see it when the completion of round is v (see
// record.Round), worked out here apart from complete: a record of that round whose
// indices are not all there takes first+Offset, first+Offset+1, … for its entries,
// first being the 8 bytes that start v (a shorter v is no completion).
func completedAs(r record, round uint64, v []byte) record {
	if r.Round == round && len(r.Indices) != len(r.Entries) && len(v) >= 8 {
		first := binary.BigEndian.Uint64(v)
		r.Indices = nil
		for i := range r.Entries {
			r.Indices = append(r.Indices, first+r.Offset+uint64(i))
		}
		if r.Indices == nil {
			r.Indices = []uint64{}
		}
	}
	return r
}

// sameError reports whether err is, or wraps the message of, the decoder's error
// decErr: each decoding makes a new error value, so they compare by message.
func sameError(err, decErr error) bool {
	return err != nil && decErr != nil && strings.Contains(err.Error(), decErr.Error())
}

// FuzzStateRecord: a record read from the state database, with the completion of its
// round, either is refused, by get, getChecked, recovery's scan (pendingRecords) and
// prune alike, with the error of the JSON decoder, or reads as what the decoder makes
// of it, completed by its round as record.Round says; recovery finds it if and only if
// it is pending; prune forgets it, and the completion of its round, only as their
// expiries say; and written back (by a commit, as recovery and the committer write)
// it reads back the same and encodes to the same bytes. round is the completion stored
// for round fuzzRound, and notAfter the expiry under which the index lists the record
// (none if not positive: putRecord writes no other).
func FuzzStateRecord(f *testing.F) {
	const fuzzRound = 7
	cutoff := time.Unix(1_800_000_000, 0)
	past, future := cutoff.Unix()-3600, cutoff.Unix()+3600
	completion := func(first uint64, notAfter int64) []byte {
		return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, first), uint64(notAfter))
	}
	entry := []byte(`{"v":1,"dta":1,"domain":"example.com","kind":"permit","slot":3}`)
	for _, c := range []struct {
		r        record
		round    []byte
		notAfter int64
	}{
		{record{TicketSHA256: strings.Repeat("ab", 32), Kind: ticket.KindClient, Entries: [][]byte{entry},
			Sealed: [][]byte{{1, 2}}, Slots: []uint64{0}, Indices: []uint64{41}, SizeHint: 41, NotAfter: past}, nil, past},
		{record{Kind: ticket.KindPermit, Entries: [][]byte{entry, entry, entry}, Slots: []uint64{3, 4, 5},
			Sealed: [][]byte{{1}, {2}, {3}}, SizeHint: 9, Round: fuzzRound, Offset: 2, NotAfter: past},
			completion(100, past), past},
		{record{Kind: ticket.KindPermit, Entries: [][]byte{entry, entry}, Round: fuzzRound, Offset: 1, NotAfter: future},
			completion(math.MaxUint64, future)[:8], future},
		{record{Kind: ticket.KindRevoke, Entries: [][]byte{entry}, Slots: []uint64{0}, Round: fuzzRound},
			completion(5, math.MaxInt64), 0},
		{record{Kind: ticket.KindServer, Entries: [][]byte{entry}, Round: 8, NotAfter: past}, completion(1, past), past},
		{record{Kind: ticket.KindPermit, Entries: [][]byte{}, Slots: []uint64{}, Indices: []uint64{}}, completion(1, past), -1},
	} {
		b, err := json.Marshal(&c.r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, c.round, c.notAfter)
		f.Add(b[:len(b)/2], c.round, c.notAfter)
	}
	f.Add([]byte(`{"entries":null,"indices":[1,2],"round":7,"offset":18446744073709551615}`), completion(2, past), past)
	f.Add([]byte(`{"entries":["AA=="],"slots":[-1]}`), []byte{}, past)
	f.Add([]byte(`{"kind":"\udc00","entries":[null,""],"size_hint":1.5}`), []byte{}, past)
	f.Add([]byte(`null`), []byte{}, past)
	f.Add([]byte{}, []byte{}, past)

	st := fuzzStateStore(f)
	f.Fuzz(func(t *testing.T, v, round []byte, notAfter int64) {
		const nonce, nonce2 = "fuzz-nonce", "fuzz-nonce-2"
		resetState(t, st, func(tx *bolt.Tx) error {
			if notAfter > 0 {
				if err := tx.Bucket(bucketExpiry).Put(expiryKey(notAfter, nonce), nil); err != nil {
					return err
				}
			}
			if err := tx.Bucket(bucketRounds).Put(roundKey(fuzzRound), round); err != nil {
				return err
			}
			return tx.Bucket(bucketIssuances).Put([]byte(nonce), v)
		})
		var want record
		decErr := json.Unmarshal(v, &want)
		want = completedAs(want, fuzzRound, round)

		r, err := st.get(nonce)
		r2, revoked, err2 := st.getChecked(nonce, strings.Repeat("cd", 32))
		switch {
		case decErr != nil:
			if r != nil || r2 != nil || revoked || !sameError(err, decErr) || !sameError(err2, decErr) {
				t.Fatalf("get: %+v, %v; getChecked: %+v, %v, %v; the decoder: %v", r, err, r2, revoked, err2, decErr)
			}
		case err != nil || err2 != nil || revoked || !reflect.DeepEqual(*r, want) || !reflect.DeepEqual(*r2, want):
			t.Fatalf("get: %+v, %v; getChecked: %+v, %v, %v; want %+v", r, err, r2, revoked, err2, want)
		}

		p, err := st.pendingRecords()
		switch {
		case decErr != nil:
			if !sameError(err, decErr) {
				t.Fatalf("recovery's scan of a record that does not decode: %v, %v", p, err)
			}
		case err != nil:
			t.Fatalf("recovery's scan: %v", err)
		case want.pending():
			if len(p) != 1 || !reflect.DeepEqual(p[nonce], &want) {
				t.Fatalf("recovery's scan found %v, want %+v", p, want)
			}
		case len(p) != 0:
			t.Fatalf("recovery's scan found complete records %v", p)
		}

		// prune at cutoff: the record goes if its index key is before cutoff and it is
		// complete; the completion of its round if its expiry is before cutoff
		// and not the MaxInt64 of rounds never forgotten. A record that does not decode
		// fails the whole transaction.
		expired := notAfter > 0 && notAfter < cutoff.Unix()
		n, err := st.prune(cutoff, 10)
		_, recLeft := rawState(t, st, bucketIssuances, []byte(nonce))
		_, indexLeft := rawState(t, st, bucketExpiry, expiryKey(notAfter, nonce))
		_, roundLeft := rawState(t, st, bucketRounds, roundKey(fuzzRound))
		dropRound := len(round) >= 16 && int64(binary.BigEndian.Uint64(round[8:])) != math.MaxInt64 &&
			int64(binary.BigEndian.Uint64(round[8:])) < cutoff.Unix()
		switch {
		case expired && decErr != nil:
			if !sameError(err, decErr) || n != 0 || !recLeft || !indexLeft || !roundLeft {
				t.Fatalf("prune of a record that does not decode: %d, %v", n, err)
			}
		case err != nil:
			t.Fatalf("prune: %v", err)
		case expired && !want.pending():
			if n != 1 || recLeft || indexLeft || roundLeft == dropRound {
				t.Fatalf("prune of an expired record: %d; left: record %v, index %v, round %v", n, recLeft, indexLeft, roundLeft)
			}
		case n != 0 || !recLeft || indexLeft != (notAfter > 0) || roundLeft == dropRound:
			t.Fatalf("prune: %d; left: record %v, index %v, round %v", n, recLeft, indexLeft, roundLeft)
		}

		if decErr != nil {
			return
		}
		// Written back, the record reads the same, and encodes to the same bytes.
		if err := st.commit(nil, []storePut{{nonce: nonce2, rec: r}}); err != nil {
			t.Fatalf("a record read from the store does not write: %v", err)
		}
		back, err := st.get(nonce2)
		if err != nil {
			t.Fatalf("a record written back does not read: %v", err)
		}
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if enc2, err := json.Marshal(back); err != nil || !bytes.Equal(enc, enc2) || back.pending() != r.pending() {
			t.Fatalf("the record changed on a round trip: %s, %s (%v)", enc, enc2, err)
		}
	})
}

// FuzzRevocation: a revocation read from the state database (its key, the idhash in
// hex; its value, the revocation's nonce, which no reader takes) revokes exactly that
// key for the issuance path (revoked, revokedAmong, getChecked), and gives recovery
// (revokedSubjects) the log subject of the identity if and only if the key is the hex
// of an idhash, and nothing else.
func FuzzRevocation(f *testing.F) {
	id := bytes.Repeat([]byte{0xab}, 32)
	f.Add(hex.EncodeToString(id), []byte("nonce"))
	f.Add(strings.ToUpper(hex.EncodeToString(id)), []byte{})
	f.Add(hex.EncodeToString(id)[:63], []byte("nonce"))
	f.Add(hex.EncodeToString(id)+"00", []byte("nonce"))
	f.Add("zz"+hex.EncodeToString(id)[2:], []byte("nonce"))
	f.Add("\x00", []byte(nil))

	st := fuzzStateStore(f)
	f.Fuzz(func(t *testing.T, key string, nonce []byte) {
		if key == "" || len(key) > bolt.MaxKeySize {
			return // bolt has no such key
		}
		resetState(t, st, func(tx *bolt.Tx) error { return tx.Bucket(bucketRevoked).Put([]byte(key), nonce) })
		other := key + "\x00"
		if ok, err := st.revoked(key); err != nil || !ok {
			t.Fatalf("revoked: %v, %v", ok, err)
		}
		if ok, err := st.revoked(other); err != nil || ok {
			t.Fatalf("another key revoked: %v, %v", ok, err)
		}
		if got, err := st.revokedAmong([]string{other, key}); err != nil || !maps.Equal(got, map[string]bool{key: true}) {
			t.Fatalf("revokedAmong: %v, %v", got, err)
		}
		if r, revoked, err := st.getChecked("no-such-nonce", key); r != nil || !revoked || !errors.Is(err, errNoRecord) {
			t.Fatalf("getChecked: %+v, %v, %v", r, revoked, err)
		}
		want := map[string]bool{}
		if b, err := hex.DecodeString(key); err == nil && len(b) == 32 {
			want[wire.Subject([32]byte(b))] = true
		}
		if got, err := st.revokedSubjects(); err != nil || !maps.Equal(got, want) {
			t.Fatalf("revokedSubjects of %q: %v, %v; want %v", key, got, err, want)
		}
	})
}
