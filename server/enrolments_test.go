package server

import (
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// TestEnrolmentsOfAnID: an ID with two devices and a code not yet redeemed is listed
// with each enrolment's state; the registrar sees the other enrolments when it adds
// one; revoking by idhash revokes one device, by ID every enrolment; unblock by ID
// unblocks them all.
func TestEnrolmentsOfAnID(t *testing.T) {
	e := newEnv(t, 0)
	h := e.start(t, t.TempDir(), false)
	list := func(t *testing.T, query string) wire.EnrolmentList {
		t.Helper()
		var l wire.EnrolmentList
		if st, body := do(t, h.http, "GET", h.url+"/v1/admin/enrolments?"+query, testAdmin, nil, &l); st != 200 {
			t.Fatalf("list %s: %d %s", query, st, body)
		}
		return l
	}
	states := func(t *testing.T, l wire.EnrolmentList) map[string]string {
		t.Helper()
		m := map[string]string{}
		for _, x := range l.Enrolments {
			m[x.IDHash] = x.State
		}
		return m
	}
	phone := h.enrol(t, wire.EnrolmentRequest{ID: "erin"}, "1234")
	tablet := h.enrol(t, wire.EnrolmentRequest{ID: "erin"}, "5678")
	h.enrol(t, wire.EnrolmentRequest{ID: "frank"}, "1111")
	var pending wire.EnrolmentCreated
	if st, body := do(t, h.http, "POST", h.url+"/v1/admin/enrolments", testAdmin, wire.EnrolmentRequest{ID: "erin", Device: true}, &pending); st != 200 || pending.OtherActive != 2 {
		t.Fatalf("third enrolment of erin: %d %s, want other_active 2", st, body)
	}
	for range 3 {
		h.login(t, phone, "0000", loginOpts{})
	}
	want := map[string]string{phone.pkg.IDHash: wire.StateBlocked, tablet.pkg.IDHash: wire.StateActive, pending.IDHash: wire.StatePending}
	l := list(t, "id=erin")
	if got := states(t, l); !mapsEqual(got, want) {
		t.Fatalf("erin's enrolments: %v, want %v", got, want)
	}
	for _, x := range l.Enrolments {
		if x.ID != "erin" || (x.IDHash == phone.pkg.IDHash && (x.Failures != 3 || x.DayFailures != 3)) || x.Device != (x.IDHash == pending.IDHash) {
			t.Fatalf("record %+v", x)
		}
	}

	// The whole domain, page by page.
	var all []string
	for q := "limit=2"; ; {
		page := list(t, q)
		for _, x := range page.Enrolments {
			all = append(all, x.IDHash)
		}
		if page.Next == "" {
			break
		}
		q = "limit=2&after=" + page.Next
	}
	if len(all) != 4 || !slices.IsSorted(all) {
		t.Fatalf("paged listing: %v", all)
	}

	var ub wire.UnblockResult
	if st, body := do(t, h.http, "POST", h.url+"/v1/admin/unblock", testAdmin, wire.IdentityRequest{ID: "erin"}, &ub); st != 200 || len(ub.IDHashes) != 3 ||
		!slices.Equal(ub.Blocked, []string{phone.pkg.IDHash}) {
		t.Fatalf("unblock erin: %d %s, want only the phone (%s) blocked", st, body, phone.pkg.IDHash)
	}
	if st, body := do(t, h.http, "POST", h.url+"/v1/admin/unblock", testAdmin, wire.IdentityRequest{ID: "erin"}, &ub); st != 200 || len(ub.IDHashes) != 3 || ub.Blocked == nil || len(ub.Blocked) != 0 {
		t.Fatalf("unblock erin again: %d %s, want none blocked", st, body)
	}
	var rr wire.RevokeResult
	if st, body := do(t, h.http, "POST", h.url+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{IDHash: tablet.pkg.IDHash}, &rr); st != 200 || len(rr.IDHashes) != 1 {
		t.Fatalf("revoke the tablet: %d %s", st, body)
	}
	if res := h.login(t, phone, "1234", loginOpts{}); res.status != 200 {
		t.Fatalf("the phone after the tablet's revocation: %d %s", res.status, res.body)
	}
	if res := h.login(t, tablet, "5678", loginOpts{}); res.status != 401 {
		t.Fatalf("the revoked tablet: %d %s", res.status, res.body)
	}
	if st, body := do(t, h.http, "POST", h.url+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{ID: "erin"}, &rr); st != 200 || len(rr.IDHashes) != 3 || len(rr.Unreachable) != 0 {
		t.Fatalf("revoke erin: %d %s", st, body)
	}
	if res := h.login(t, phone, "1234", loginOpts{}); res.status != 401 {
		t.Fatalf("the phone after erin's revocation: %d %s", res.status, res.body)
	}
	for _, x := range list(t, "id=erin").Enrolments {
		if x.State != wire.StateRevoked || x.Revoked == nil {
			t.Fatalf("after revoking erin: %+v", x)
		}
	}
	if l := list(t, "id=frank"); len(l.Enrolments) != 1 || l.Enrolments[0].State != wire.StateActive {
		t.Fatalf("frank: %+v", l)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestListEnrolmentsBadQueries(t *testing.T) {
	e := newEnv(t, 0)
	h := e.start(t, t.TempDir(), false)
	cases := map[string]struct {
		query, bearer string
		status        int
	}{
		"fail/unknown-parameter": {"who=erin", testAdmin, 400},
		"fail/repeated-id":       {"id=a&id=b", testAdmin, 400},
		"fail/limit-zero":        {"limit=0", testAdmin, 400},
		"fail/limit-too-large":   {"limit=1001", testAdmin, 400},
		"fail/limit-not-number":  {"limit=1e3", testAdmin, 400},
		"fail/after-not-idhash":  {"after=zz", testAdmin, 400},
		"fail/id-with-limit":     {"id=erin&limit=3", testAdmin, 400},
		"fail/unknown-id":        {"id=" + url.QueryEscape("nobody@example.com"), testAdmin, 404},
		"fail/no-admin-token":    {"", "", 401},
		"ok/empty-domain":        {"", testAdmin, 200},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if st, body := do(t, h.http, "GET", h.url+"/v1/admin/enrolments?"+tc.query, tc.bearer, nil, nil); st != tc.status {
				t.Fatalf("%d %s, want %d", st, body, tc.status)
			}
		})
	}
}

// TestEnrolmentIndexMigration: a database from before the ID index gets it built when
// the server opens it.
func TestEnrolmentIndexMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.db")
	st, err := openStore(path, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ids := []pairing.IDHash{{1}, {2}, {3}}
	for i, id := range ids {
		app := "grace"
		if i == 2 {
			app = "heidi"
		}
		if err := st.createEnrolment(id, &enrolment{ID: app, Created: time.Now()}, "CODE"+string(rune('A'+i)), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketIDEnrolments) }); err != nil {
		t.Fatal(err)
	}
	st.close()
	if st, err = openStore(path, time.Minute); err != nil {
		t.Fatal(err)
	}
	defer st.close()
	got, err := st.enrolmentsOf("grace")
	if err != nil || !slices.Equal(got, ids[:2]) {
		t.Fatalf("grace: %v %v", got, err)
	}
	if got, err := st.enrolmentsOf("gra"); err != errNotFound {
		t.Fatalf("a prefix of an ID matched: %v %v", got, err)
	}
}
