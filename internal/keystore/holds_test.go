package keystore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestFileHolds: whether a secret is there is known without the passphrase, and the
// directory's checks still apply.
func TestFileHolds(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if _, err := FileHolds(dir, "signing-key"); err == nil {
		t.Fatal("a missing directory holds nothing and is an error")
	}
	ks, err := OpenFile(dir, testPassphrase, WithScryptWorkFactor(testWorkFactor))
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Put(context.Background(), "signing-key", []byte("secret")); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"signing-key": true, "master-share": false} {
		if got, err := FileHolds(dir, name); err != nil || got != want {
			t.Errorf("FileHolds(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := FileHolds(dir, "../escape"); err == nil {
		t.Error("a bad name is accepted")
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := FileHolds(dir, "signing-key"); err == nil {
		t.Error("a directory open to others is accepted")
	}
}
