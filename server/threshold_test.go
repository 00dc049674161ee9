package server

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/wire"
)

// TestThresholdRevocation revokes in a 3-of-5 domain through the admin API with DTAs
// down: with two down, the three that acknowledge are n−t+1, so the revocation is
// effective at the DTAs; with three down it is not, and the answer says so. Either way
// the registrar retries the others in the background until they have it (the gauge of
// pending notices falls to zero, and the log says when the revocation became
// effective).
func TestThresholdRevocation(t *testing.T) {
	d := testdomain.NewThreshold(t, "example.test", 3, 5, 0)
	sQ, err := Provision(context.Background(), d.Bundle, d.Registrar, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{d: d, sQ: sQ}
	h := e.start(t, t.TempDir(), false)
	h.srv.revRetry.base = 20 * time.Millisecond
	for _, tc := range []struct {
		name      string
		id        string
		down      []int // DTA indices
		acked     int
		effective bool
	}{
		{"ok/two-dtas-down", "gina", []int{4, 5}, 3, true},
		{"fail/three-dtas-down", "hank", []int{3, 4, 5}, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var created wire.EnrolmentCreated
			if st, body := do(t, h.http, "POST", h.url+"/v1/admin/enrolments", testAdmin, wire.EnrolmentRequest{ID: tc.id}, &created); st != 200 {
				t.Fatalf("enrolment: %d %s", st, body)
			}
			var down []uint32
			for _, i := range tc.down {
				d.DTAs[i-1].Stop()
				down = append(down, uint32(i))
			}
			var rr wire.RevokeResult
			if st, body := do(t, h.http, "POST", h.url+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{ID: tc.id}, &rr); st != 200 {
				t.Fatalf("revoke: %d %s", st, body)
			}
			q := rr.DTAQuorum
			if q == nil || q.Acknowledged != tc.acked || q.Needed != 3 || q.Effective != tc.effective ||
				!slices.Equal(q.Retrying, down) || !slices.Equal(rr.Unreachable, down) {
				t.Fatalf("revoke: %+v %+v", rr, q)
			}
			idHex := rr.IDHashes[0]
			if !tc.effective && !strings.Contains(logBuf.String(), "revocation not yet effective at the DTAs") {
				t.Fatal("no log line for a revocation that is not effective")
			}
			if !strings.Contains(h.metrics(t), "polyroot_server_revocation_notices_pending "+strconv.Itoa(len(down))) {
				t.Fatalf("metrics: %s", grepLines(h.metrics(t), "revocation_notices"))
			}
			for _, i := range tc.down {
				d.DTAs[i-1].Start()
			}
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(h.metrics(t), "polyroot_server_revocation_notices_pending 0") {
				if time.Now().After(deadline) {
					t.Fatalf("the notices were not retried: %s", grepLines(h.metrics(t), "revocation_notices"))
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !tc.effective && !strings.Contains(grepLines(logBuf.String(), idHex), "revocation effective at the DTAs") {
				t.Fatal("no log line for the revocation becoming effective")
			}
		})
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
