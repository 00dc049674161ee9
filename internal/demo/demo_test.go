package demo

import (
	"bytes"
	"context"
	"go/parser"
	"go/token"
	"strings"
	"testing"
	"time"
)

// The whole story runs in internal/cli's TestDemo, as `polyroot demo`.

func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Run(ctx, new(bytes.Buffer)); err == nil {
		t.Fatal("a cancelled demo reported success")
	}
}

// numberWords are the words for the step counts the docs may say.
var numberWords = map[int]string{9: "nine", 10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen"}

// TestPackageDocCountsSteps: the package comment says as many steps as Run tells
// (internal/cli checks `polyroot demo --help` the same way).
func TestPackageDocCountsSteps(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "demo.go", nil, parser.PackageClauseOnly|parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	if want := "in " + numberWords[Steps()] + " steps"; !strings.Contains(f.Doc.Text(), want) {
		t.Fatalf("the package comment does not say %q (Run tells %d steps):\n%s", want, Steps(), f.Doc.Text())
	}
}

// TestValidUntil: an expiry a day ahead is printed with its date, not only the time
// of day.
func TestValidUntil(t *testing.T) {
	cases := []struct {
		name string
		at   time.Time
		want string
	}{
		{"ok/utc", time.Date(2026, 3, 14, 0, 49, 0, 0, time.UTC), "2026-03-14 00:49 UTC"},
		{"ok/other-zone-in-utc", time.Date(2026, 3, 14, 1, 49, 0, 0, time.FixedZone("CET", 3600)), "2026-03-14 00:49 UTC"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := validUntil(tc.at); got != tc.want {
				t.Fatalf("%q, want %q", got, tc.want)
			}
		})
	}
}
