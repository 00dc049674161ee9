package keystore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// fuzzMaxWorkFactor is the highest scrypt work factor a fuzzed file may name: a File
// accepts up to 2^22 (4 GiB of scrypt memory per Get), which would make each such
// input take seconds and gigabytes, not find bugs.
const fuzzMaxWorkFactor = 10

// costlyScrypt reports whether an age file names (in any scrypt stanza line) a work
// factor above fuzzMaxWorkFactor; the fuzz test skips those inputs.
func costlyScrypt(file []byte) bool {
	for _, line := range strings.Split(string(file), "\n") {
		if !strings.Contains(line, "scrypt") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if n, err := strconv.Atoi(f); err == nil && (n > fuzzMaxWorkFactor || len(f) > 2) {
				return true
			}
		}
	}
	return false
}

// FuzzFileGet: a keystore file that another party may have written or replaced gives
// ErrCorrupt, ErrWrongPassphrase or a secret, never a panic, and its errors never quote
// the file; a secret it yields, stored again with Put, reads back the same.
func FuzzFileGet(f *testing.F) {
	dir := keysDir(f)
	ks := openTestFile(f, dir)
	ctx := context.Background()
	for _, secret := range [][]byte{[]byte("a master share of 32 bytes......"), {0}} {
		if err := ks.Put(ctx, "seed", secret); err != nil {
			f.Fatal(err)
		}
		raw, err := os.ReadFile(ks.path("seed"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		f.Add(raw[:len(raw)-1])
		flipped := bytes.Clone(raw)
		flipped[len(flipped)-1] ^= 1
		f.Add(flipped)
	}
	other, err := OpenFile(keysDir(f), []byte("another passphrase"), WithScryptWorkFactor(testWorkFactor))
	if err != nil {
		f.Fatal(err)
	}
	if err := other.Put(ctx, "seed", []byte("secret")); err != nil {
		f.Fatal(err)
	}
	raw, err := os.ReadFile(other.path("seed"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte("age-encryption.org/v1\n-> X25519 AAAA\n--- AAAA\n"))
	f.Add([]byte("a secret stored in clear by mistake, which no error may quote\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, file []byte) {
		if costlyScrypt(file) {
			return
		}
		if err := os.WriteFile(ks.path("fuzz"), file, 0o600); err != nil {
			t.Fatal(err)
		}
		secret, err := ks.Get(ctx, "fuzz")
		if err != nil {
			if secret != nil {
				t.Fatal("an error and a secret")
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrWrongPassphrase) && !strings.Contains(err.Error(), "work factor") {
				t.Fatalf("an error that says neither corrupt nor wrong passphrase: %v", err)
			}
			text := strings.ReplaceAll(err.Error(), ks.path("fuzz"), "")
			for _, line := range strings.Split(string(file), "\n") {
				if len(line) >= 16 && strings.Contains(text, line) {
					t.Fatalf("the error quotes the file (%q): %v", line, err)
				}
			}
			return
		}
		if len(secret) == 0 {
			return // an age file of an empty payload: Put refuses to write one
		}
		if err := ks.Put(ctx, "fuzz", secret); err != nil {
			t.Fatal(err)
		}
		again, err := ks.Get(ctx, "fuzz")
		if err != nil || !bytes.Equal(again, secret) {
			t.Fatalf("the secret changed on a round trip: %q, %q (%v)", secret, again, err)
		}
	})
}
