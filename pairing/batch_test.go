package pairing

import (
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
