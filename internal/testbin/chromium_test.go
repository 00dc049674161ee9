package testbin

import (
	"os"
	"path/filepath"
	"testing"
)

func TestChromiumFromEnv(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ChromiumEnv, exe)
	r := &recorder{TB: t}
	if got := Chromium(r); got != exe || r.fatal != "" || r.skip != "" {
		t.Fatalf("Chromium = %q (fatal %q, skip %q), want %q", got, r.fatal, r.skip, exe)
	}
	t.Setenv(ChromiumEnv, filepath.Join(t.TempDir(), "nope"))
	r = &recorder{TB: t}
	if Chromium(r); r.fatal == "" {
		t.Fatal("Chromium with the variable naming a missing file does not fail")
	}
}
