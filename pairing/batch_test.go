//go:build !js

package pairing

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// pending makes n pass-2 messages ready for verification; those at the indices in bad
// are made with a wrong PIN.
func (w *world) pending(t *testing.T, c *Client, n int, bad map[int]bool) []BatchItem {
	t.Helper()
	items := make([]BatchItem, n)
	for i := range items {
		pin := []byte("1234")
		if bad[i] {
			pin = []byte("9999")
		}
		f := w.upToPass2(t, c, pin)
		items[i] = BatchItem{Session: f.ss, Pass2: f.p2}
	}
	return items
}

func TestVerifyBatch(t *testing.T) {
	w := newWorld(t, "api.example.com", 3)
	c := w.enrol(t, "alice@example.com", []byte("1234"))
	cases := []struct {
		n   int
		bad []int
	}{
		{0, nil}, {1, nil}, {1, []int{0}}, {2, []int{1}}, {8, nil}, {8, []int{0}}, {8, []int{7}},
		{8, []int{3, 4}}, {8, []int{0, 1, 2, 3, 4, 5, 6, 7}}, {13, []int{2, 5, 11, 12}}, {33, []int{0, 16, 32}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("size=%d/bad=%v", tc.n, tc.bad), func(t *testing.T) {
			bad := map[int]bool{}
			for _, i := range tc.bad {
				bad[i] = true
			}
			items := w.pending(t, c, tc.n, bad)
			results := VerifyBatch(nil, items)
			if len(results) != tc.n {
				t.Fatalf("%d results for %d items", len(results), tc.n)
			}
			for i, err := range results {
				if bad[i] != (err != nil) || (err != nil && !errors.Is(err, ErrAuthFailed)) {
					t.Fatalf("item %d: bad=%v, result %v", i, bad[i], err)
				}
				if err == nil { // a verified item confirms to the same key as the client's
					if _, _, err := items[i].Session.Confirm(items[i].Pass2, nil); err != nil {
						t.Fatalf("item %d: confirm: %v", i, err)
					}
				} else if _, _, err := items[i].Session.Confirm(items[i].Pass2, nil); err == nil {
					t.Fatalf("item %d: a failed item confirmed", i)
				}
			}
		})
	}
	t.Run("fail/used-session-in-batch", func(t *testing.T) {
		items := w.pending(t, c, 3, nil)
		if err := items[1].Session.Verify(items[1].Pass2); err != nil {
			t.Fatal(err)
		}
		results := VerifyBatch(nil, items)
		if results[0] != nil || !errors.Is(results[1], ErrSessionUsed) || results[2] != nil {
			t.Fatalf("got %v", results)
		}
	})
	t.Run("fail/mixed-keys", func(t *testing.T) {
		other := newWorld(t, "api.example.org", 1)
		other.now = w.now
		oc := other.enrol(t, "bob@example.org", []byte("1234"))
		items := append(w.pending(t, c, 2, nil), other.pending(t, oc, 1, nil)...)
		results := VerifyBatch(nil, items)
		if results[0] != nil || results[1] != nil || results[2] == nil {
			t.Fatalf("got %v", results)
		}
	})
}

// TestVerifyBatchReject checks that a rejected item fails whatever its pass 2 holds and
// costs what a wrong PIN costs: the same pairings in the batch (its splitting
// included) and in Conclude, whether its PIN is right or wrong.
func TestVerifyBatchReject(t *testing.T) {
	w := newWorld(t, "api.example.com", 3)
	c := w.enrol(t, "alice@example.com", []byte("1234"))
	run := func(last BatchItem) (results []error, pairings uint64) {
		items := append(w.pending(t, c, 7, nil), last)
		before := w.verifier.Key.Pairings()
		results = VerifyBatch(nil, items)
		for i, it := range items {
			if _, _, err := it.Session.Conclude(it.Pass2, nil, results[i]); !errors.Is(err, results[i]) {
				t.Fatalf("item %d: Conclude %v after %v", i, err, results[i])
			}
		}
		return results, w.verifier.Key.Pairings() - before
	}
	wrong := w.pending(t, c, 1, map[int]bool{0: true})[0]
	rejectRight := w.pending(t, c, 1, nil)[0]
	rejectRight.Reject = true
	rejectWrong := w.pending(t, c, 1, map[int]bool{0: true})[0]
	rejectWrong.Reject = true
	var counts []uint64
	for name, last := range map[string]BatchItem{"wrong-pin": wrong, "reject/right-pin": rejectRight, "reject/wrong-pin": rejectWrong} {
		results, n := run(last)
		for i, err := range results[:7] {
			if err != nil {
				t.Fatalf("%s: good item %d: %v", name, i, err)
			}
		}
		if !errors.Is(results[7], ErrAuthFailed) {
			t.Fatalf("%s: got %v, want ErrAuthFailed", name, results[7])
		}
		counts = append(counts, n)
	}
	if counts[0] != counts[1] || counts[1] != counts[2] {
		t.Fatalf("pairings per batch differ: %v", counts)
	}
}

func TestConclude(t *testing.T) {
	w := newWorld(t, "api.example.com", 3)
	c := w.enrol(t, "alice@example.com", []byte("1234"))
	t.Run("ok/key-matches-client", func(t *testing.T) {
		f := w.upToPass2(t, c, []byte("1234"))
		res := VerifyBatch(nil, []BatchItem{{Session: f.ss, Pass2: f.p2}})
		fin, key, err := f.ss.Conclude(f.p2, nil, res[0])
		if err != nil {
			t.Fatal(err)
		}
		ck, err := f.cs.Finish(fin)
		if err != nil || !bytes.Equal(ck, key) {
			t.Fatalf("client key %x, server key %x, %v", ck, key, err)
		}
		if _, _, err := f.ss.Conclude(f.p2, nil, nil); err == nil {
			t.Fatal("a session concluded twice")
		}
	})
	t.Run("fail/unverified", func(t *testing.T) {
		f := w.upToPass2(t, c, []byte("1234"))
		if _, _, err := f.ss.Conclude(f.p2, nil, nil); err == nil {
			t.Fatal("Conclude accepted a pass 2 that no batch verified")
		}
	})
	t.Run("fail/channel-binding", func(t *testing.T) {
		f := w.upToPass2(t, c, []byte("1234"))
		res := VerifyBatch(nil, []BatchItem{{Session: f.ss, Pass2: f.p2}})
		if _, _, err := f.ss.Conclude(f.p2, []byte("another channel"), res[0]); !errors.Is(err, ErrChannelBinding) {
			t.Fatalf("got %v, want ErrChannelBinding", err)
		}
	})
}

// TestVerifyBatchPoisoned: a batch filled with bad pass 2 costs about what checking
// each item alone would (at most n + 2·bits(n) equation checks, not the 2n−1 of
// halving down to every item), and still gives every item its own result; a batch with
// a few bad items keeps the cheaper halving.
func TestVerifyBatchPoisoned(t *testing.T) {
	w := newWorld(t, "api.example.com", 3)
	c := w.enrol(t, "alice@example.com", []byte("1234"))
	const n = 64
	span := func(from, to, step int) []int {
		var s []int
		for i := from; i < to; i += step {
			s = append(s, i)
		}
		return s
	}
	for _, tc := range []struct {
		name string
		bad  []int
		most int // equation checks at most
	}{
		{"ok/clean", nil, 1},
		{"ok/one-bad", []int{17}, 1 + 2*6},
		{"ok/four-spread-bisected", span(0, n, 16), 39},
		{"poisoned/63-bad-one-good", span(1, n, 1), n + 14},
		{"poisoned/all-bad", span(0, n, 1), n + 14},
		{"poisoned/every-other", span(0, n, 2), n + 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := map[int]bool{}
			for _, i := range tc.bad {
				bad[i] = true
			}
			items := w.pending(t, c, n, bad)
			before := w.verifier.Key.Pairings()
			results := VerifyBatch(nil, items)
			checks := int(w.verifier.Key.Pairings() - before)
			for i, err := range results {
				if bad[i] != (err != nil) {
					t.Fatalf("item %d: bad=%v, result %v", i, bad[i], err)
				}
			}
			if checks > tc.most {
				t.Fatalf("%d equation checks for %d items with %d bad, want at most %d", checks, n, len(tc.bad), tc.most)
			}
			t.Logf("%d equation checks", checks)
		})
	}
}
