package testbin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Fatalf and Skipf instead of stopping.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	if r.fatal == "" {
		r.fatal = fmt.Sprintf(format, args...)
	}
}
func (r *recorder) Skipf(format string, args ...any) {
	if r.skip == "" {
		r.skip = fmt.Sprintf(format, args...)
	}
}

func TestPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "fakebin")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		env         string // value of the program's variable
		path        string // PATH
		integration string
		want        string // returned path, when found
		wantFatal   bool
		wantSkip    bool
	}{
		{name: "ok/from-env", env: exe, want: exe},
		{name: "ok/from-path", path: dir, want: exe},
		{name: "ok/env-wins-over-path", env: exe, path: t.TempDir(), want: exe},
		{name: "skip/missing", path: t.TempDir(), wantSkip: true},
		{name: "fail/missing-under-integration", path: t.TempDir(), integration: "1", wantFatal: true},
		{name: "fail/env-names-missing-file", env: filepath.Join(dir, "nope"), wantFatal: true},
		{name: "fail/env-names-non-executable", env: plain, wantFatal: true},
		{name: "fail/env-names-directory", env: dir, wantFatal: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("POLYROOT_TESTBIN_FAKE", tc.env)
			t.Setenv("PATH", tc.path)
			t.Setenv(IntegrationEnv, tc.integration)
			r := &recorder{TB: t}
			got := Path(r, "POLYROOT_TESTBIN_FAKE", "fakebin")
			switch {
			case tc.wantFatal:
				if r.fatal == "" {
					t.Fatalf("Path = %q, want a failure", got)
				}
			case tc.wantSkip:
				if r.skip == "" || r.fatal != "" {
					t.Fatalf("Path = %q (fatal %q), want a skip", got, r.fatal)
				}
			default:
				if r.fatal != "" || r.skip != "" || got != tc.want {
					t.Fatalf("Path = %q (fatal %q, skip %q), want %q", got, r.fatal, r.skip, tc.want)
				}
			}
		})
	}
}

func TestMissingMessageSaysHowToGetIt(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("POLYROOT_TESTBIN_FAKE", "")
	t.Setenv(IntegrationEnv, "1")
	r := &recorder{TB: t}
	Path(r, "POLYROOT_TESTBIN_FAKE", "vault")
	for _, want := range []string{"make vault", "POLYROOT_TESTBIN_FAKE", IntegrationEnv} {
		if !strings.Contains(r.fatal, want) {
			t.Errorf("message %q lacks %q", r.fatal, want)
		}
	}
}
