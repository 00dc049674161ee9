package wasmclient

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/polyroot/polyroot/client"
	"github.com/polyroot/polyroot/internal/wire"
)

// TestClassify maps every error kind of package client, as the client returns them
// (wrapped, joined), to the API's kind.
func TestClassify(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("client: context: %w", err) }
	cases := []struct {
		name  string
		err   error
		kind  string
		tries int
	}{
		{"wrong_pin/tries", &client.WrongPINError{TriesLeft: 2}, KindWrongPIN, 2},
		{"wrong_pin/unknown", &client.WrongPINError{TriesLeft: -1}, KindWrongPIN, -1},
		{"wrong_pin/sentinel", client.ErrWrongPIN, KindWrongPIN, -1},
		{"blocked", client.ErrBlocked, KindBlocked, 0},
		{"revoked/dta", fmt.Errorf("DTA 2: %w", client.ErrRevoked), KindRevoked, 0},
		{"revoked/joined", errors.Join(fmt.Errorf("DTA 1: %w", client.ErrRevoked), &client.DTAUnreachableError{Index: 2, Err: errors.New("x")}), KindRevoked, 0},
		{"not_authentic", client.ErrServerNotAuthentic, KindNotAuthentic, 0},
		{"interception", wrap(client.ErrPossibleInterception), KindInterception, 0},
		{"not_enrolled", client.ErrNotEnrolled, KindNotEnrolled, 0},
		{"permit_expired", wrap(client.ErrPermitExpired), KindPermitExpired, 0},
		{"identity_expired", client.ErrIdentityExpired, KindIdentityExpired, 0},
		{"bad_code/syntax", fmt.Errorf("client: the enrolment code: %w", wire.ErrCode), KindBadCode, 0},
		{"bad_code/unknown", &client.APIError{From: "server", Status: 404, Code: "unknown_code", Message: "unknown, used or expired enrolment code"}, KindBadCode, 0},
		{"wrong_server", wrap(client.ErrWrongServer), KindWrongServer, 0},
		{"bundle_mismatch/fingerprint", client.ErrBundleFingerprint, KindBundleMismatch, 0},
		{"bundle_mismatch/successor", client.ErrBundleNotSuccessor, KindBundleMismatch, 0},
		{"dta_unreachable", &client.DTAUnreachableError{Index: 1, URL: "https://dta1.example", Err: errors.New("timeout")}, KindDTAUnreachable, 0},
		{"dta_unreachable/bad_share", &client.BadShareError{Indices: []uint32{1}, Err: errors.New("bad proof")}, KindDTAUnreachable, 0},
		{"dta_unreachable/quorum", &client.QuorumError{Kind: "client", Valid: 1, Need: 2, N: 3, Failed: []uint32{2, 3}}, KindDTAUnreachable, 0},
		{"network/fetch", fmt.Errorf("client: auth server: %w", &url.Error{Op: "POST", URL: "https://auth.example/v1/login/start", Err: errors.New("fetch: Failed to fetch")}), KindNetwork, 0},
		{"network/deadline", context.DeadlineExceeded, KindNetwork, 0},
		{"internal/api", &client.APIError{From: "server", Status: 500, Code: "internal", Message: "x"}, KindInternal, 0},
		{"internal/pin_policy", client.ErrPINPolicy, KindInternal, 0},
		{"internal/other", errors.New("client: something else"), KindInternal, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := Classify(tc.err)
			if e.Kind != tc.kind || e.TriesLeft != tc.tries {
				t.Fatalf("Classify(%v) = %+v, want kind %q, tries %d", tc.err, e, tc.kind, tc.tries)
			}
			if e.Message == "" {
				t.Fatal("no message")
			}
		})
	}
}

// TestClassifyNoCode: a bad code's message never repeats what the server or the
// client said about it (which could hold the code).
func TestClassifyNoCode(t *testing.T) {
	const code = "ABCDEFGHIJKLMNOPQRST"
	e := Classify(&client.APIError{From: "server", Status: 404, Code: "unknown_code", Message: "code " + code})
	if e.Kind != KindBadCode || strings.Contains(e.Message, code) {
		t.Fatalf("%+v", e)
	}
}

func TestNeedsRefresh(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 30, 0, 0, time.UTC)
	hour := func(h int) time.Time { return time.Date(2026, 12, 6, h, 0, 0, 0, time.UTC) }
	permits := func(from, to int) client.Status {
		s := client.Status{Enrolled: true}
		for h := from; h < to; h++ {
			s.Permits = append(s.Permits, client.PermitInfo{Slot: uint64(h), From: hour(h), Until: hour(h + 1)})
		}
		if len(s.Permits) > 0 {
			s.PermitsUntil = s.Permits[len(s.Permits)-1].Until
		}
		return s
	}
	cases := []struct {
		name string
		st   client.Status
		want bool
	}{
		{"ok/far", permits(12, 20), false},
		{"ok/exactly-three-left", permits(12, 16), false}, // until 16:00: 3.5 periods
		{"refresh/two-and-a-half", permits(12, 15), true},
		{"refresh/current-only", permits(12, 13), true},
		{"none/not-enrolled", client.Status{}, false},
		{"none/no-permits", client.Status{Enrolled: true}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := needsRefresh(tc.st, now); got != tc.want {
				t.Fatalf("needsRefresh = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	if got := normalizeFingerprint(" SHA256:AB:cd \n"); got != "abcd" {
		t.Fatal(got)
	}
}
