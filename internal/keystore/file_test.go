package keystore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// testWorkFactor keeps scrypt cheap in tests (2^4 instead of 2^18).
const testWorkFactor = 4

var testPassphrase = []byte("correct horse battery staple")

func randomSecret(t testing.TB) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// assertNoLeak fails if err's text contains any of the secrets in a recognisable
// encoding: raw, hex (either case), base64 (standard, URL, unpadded).
func assertNoLeak(t testing.TB, err error, secrets ...[]byte) {
	t.Helper()
	if err == nil {
		return
	}
	text := err.Error() + fmt.Sprintf(" %v %+v %#v", err, err, err)
	for _, s := range secrets {
		for _, enc := range []string{
			string(s),
			hex.EncodeToString(s),
			strings.ToUpper(hex.EncodeToString(s)),
			base64.StdEncoding.EncodeToString(s),
			base64.URLEncoding.EncodeToString(s),
			base64.RawStdEncoding.EncodeToString(s),
			base64.RawURLEncoding.EncodeToString(s),
		} {
			if enc != "" && strings.Contains(text, enc) {
				t.Fatalf("error text contains a secret: %q", text)
			}
		}
	}
}

// keysDir returns a path for a keystore directory that does not exist yet
// (t.TempDir itself is 0755, which a File refuses).
func keysDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "keys")
}

func openTestFile(t testing.TB, dir string) *File {
	t.Helper()
	ks, err := OpenFile(dir, testPassphrase, WithScryptWorkFactor(testWorkFactor))
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestFileRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	ks := openTestFile(t, dir)
	var _ Keystore = ks

	secrets := map[string][]byte{
		"master-share": randomSecret(t),
		"signing.key":  randomSecret(t),
		"a_b":          []byte{0},
		"0":            bytes.Repeat([]byte{0xff}, 4096),
	}
	for name, s := range secrets {
		if err := ks.Put(ctx, name, s); err != nil {
			t.Fatalf("Put(%s): %v", name, err)
		}
	}
	// A second File on the same directory (a restart) reads them back.
	ks2 := openTestFile(t, dir)
	for name, want := range secrets {
		got, err := ks2.Get(ctx, name)
		if err != nil {
			t.Fatalf("Get(%s): %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Get(%s) = %x, want %x", name, got, want)
		}
	}

	// Put replaces.
	next := randomSecret(t)
	if err := ks.Put(ctx, "master-share", next); err != nil {
		t.Fatal(err)
	}
	if got, err := ks.Get(ctx, "master-share"); err != nil || !bytes.Equal(got, next) {
		t.Fatalf("after rotation Get = %x, %v; want %x", got, err, next)
	}

	// The file is ciphertext: the secret is not in it in any form.
	raw, err := os.ReadFile(filepath.Join(dir, "master-share.age"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n-> scrypt ")) {
		t.Fatalf("file does not start with an age scrypt header: %q", raw[:min(len(raw), 40)])
	}
	assertNoLeak(t, errors.New(string(raw)), next)
}

func TestFileModesAndNoTempFiles(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a", "keys")
	ks := openTestFile(t, dir)
	for i := range 5 {
		if err := ks.Put(ctx, "master-share", randomSecret(t)); err != nil {
			t.Fatal(err)
		}
		if err := ks.Put(ctx, fmt.Sprintf("k%d", i), randomSecret(t)); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("directory mode %04o, want 0700", perm)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if !info.Mode().IsRegular() || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want a regular file with 0600", e.Name(), info.Mode())
		}
		if strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".age") {
			t.Errorf("unexpected file %q left in the keystore directory", e.Name())
		}
	}
	if len(names) != 6 {
		t.Errorf("directory holds %v, want master-share.age and k0..k4.age", names)
	}
}

func TestFileNotFound(t *testing.T) {
	ks := openTestFile(t, keysDir(t))
	_, err := ks.Get(context.Background(), "master-share")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing secret: %v, want ErrNotFound", err)
	}
}

func TestFileWrongPassphrase(t *testing.T) {
	ctx := context.Background()
	dir := keysDir(t)
	secret := randomSecret(t)
	if err := openTestFile(t, dir).Put(ctx, "master-share", secret); err != nil {
		t.Fatal(err)
	}
	wrong := []byte("not the passphrase")
	other, err := OpenFile(dir, wrong, WithScryptWorkFactor(testWorkFactor))
	if err != nil {
		t.Fatal(err)
	}
	got, err := other.Get(ctx, "master-share")
	if !errors.Is(err, ErrWrongPassphrase) || got != nil {
		t.Fatalf("Get with a wrong passphrase = %x, %v; want ErrWrongPassphrase", got, err)
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, "master-share.age")) {
		t.Errorf("error %q does not name the file", err)
	}
	assertNoLeak(t, err, secret, testPassphrase, wrong)
}

func TestFileRefusesOpenPermissions(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Log("running as root: the mode checks still apply (they do not rely on access denial)")
	}
	ctx := context.Background()

	t.Run("fail/file-0644", func(t *testing.T) {
		dir := keysDir(t)
		ks := openTestFile(t, dir)
		secret := randomSecret(t)
		if err := ks.Put(ctx, "master-share", secret); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "master-share.age")
		for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o610} {
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			got, err := ks.Get(ctx, "master-share")
			if err == nil || got != nil {
				t.Fatalf("mode %04o: Get succeeded", mode)
			}
			want := fmt.Sprintf("%04o", mode)
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) {
				t.Errorf("mode %04o: error %q should name %s and %s", mode, err, path, want)
			}
			assertNoLeak(t, err, secret, testPassphrase)
		}
		// Put repairs it: the new file is 0600 again.
		if err := ks.Put(ctx, "master-share", secret); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.Get(ctx, "master-share"); err != nil {
			t.Fatalf("after Put: %v", err)
		}
	})

	t.Run("fail/dir-0755-at-open", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "keys")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil { // regardless of the umask
			t.Fatal(err)
		}
		_, err := OpenFile(dir, testPassphrase, WithScryptWorkFactor(testWorkFactor))
		if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "0755") {
			t.Fatalf("OpenFile on a 0755 directory: %v; want an error naming %s and 0755", err, dir)
		}
		assertNoLeak(t, err, testPassphrase)
	})

	t.Run("fail/dir-0750-after-open", func(t *testing.T) {
		dir := keysDir(t)
		ks := openTestFile(t, dir)
		secret := randomSecret(t)
		if err := ks.Put(ctx, "master-share", secret); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		if _, err := ks.Get(ctx, "master-share"); err == nil || !strings.Contains(err.Error(), "0750") {
			t.Fatalf("Get in a 0750 directory: %v", err)
		}
		if err := ks.Put(ctx, "other", secret); err == nil || !strings.Contains(err.Error(), "0750") {
			t.Fatalf("Put in a 0750 directory: %v", err)
		}
	})

	t.Run("fail/symlink", func(t *testing.T) {
		dir := keysDir(t)
		ks := openTestFile(t, dir)
		if err := ks.Put(ctx, "real", randomSecret(t)); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(dir, "real.age"), filepath.Join(dir, "link.age")); err != nil {
			t.Skip("no symlinks here:", err)
		}
		if _, err := ks.Get(ctx, "link"); err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
			t.Fatalf("Get through a symlink: %v", err)
		}
	})

	t.Run("fail/dir-is-a-file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenFile(path, testPassphrase); err == nil {
			t.Fatal("OpenFile on a regular file succeeded")
		}
	})
}

func TestFileNames(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	dir := filepath.Join(parent, "keys")
	ks := openTestFile(t, dir)
	cases := []struct {
		name, secretName string
		ok               bool
	}{
		{"ok/plain", "master-share", true},
		{"ok/dots-inside", "dta.1.key", true},
		{"ok/underscore", "server_key", true},
		{"ok/digit-first", "1st", true},
		{"ok/two-dots-inside", "a..b", true},
		{"ok/max-length", strings.Repeat("a", 128), true},
		{"fail/empty", "", false},
		{"fail/dot", ".", false},
		{"fail/dotdot", "..", false},
		{"fail/dotdot-slash", "../escape", false},
		{"fail/slash", "a/b", false},
		{"fail/absolute", "/etc/passwd", false},
		{"fail/backslash", `a\b`, false},
		{"fail/leading-dot", ".hidden", false},
		{"fail/leading-dash", "-rf", false},
		{"fail/leading-underscore", "_x", false},
		{"fail/uppercase", "Master", false},
		{"fail/space", "master share", false},
		{"fail/nul", "a\x00b", false},
		{"fail/newline", "a\nb", false},
		{"fail/colon", "c:x", false},
		{"fail/unicode", "clé", false},
		{"fail/too-long", strings.Repeat("a", 129), false},
	}
	secret := randomSecret(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			perr := ks.Put(ctx, tc.secretName, secret)
			_, gerr := ks.Get(ctx, tc.secretName)
			if tc.ok {
				if perr != nil || gerr != nil {
					t.Fatalf("Put: %v, Get: %v", perr, gerr)
				}
				return
			}
			if !errors.Is(perr, ErrInvalidName) || !errors.Is(gerr, ErrInvalidName) {
				t.Fatalf("Put: %v, Get: %v; want ErrInvalidName", perr, gerr)
			}
			assertNoLeak(t, perr, secret)
		})
	}
	// Nothing was written outside the keystore directory.
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "keys" {
		t.Fatalf("parent directory holds %v, want only keys/", entries)
	}
}

func TestFileSecretsNeverInErrors(t *testing.T) {
	ctx := context.Background()
	dir := keysDir(t)
	ks := openTestFile(t, dir)
	secret := randomSecret(t)
	if err := ks.Put(ctx, "master-share", secret); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "master-share.age")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	var errs []error
	collect := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		errs = append(errs, err)
	}
	// Tampered payload, truncated file, garbage, wrong passphrase, open mode.
	tampered := bytes.Clone(raw)
	tampered[len(tampered)-1] ^= 1
	for what, content := range map[string][]byte{
		"tampered":  tampered,
		"truncated": raw[:len(raw)-5],
		"garbage":   []byte("not an age file"),
		"plaintext": []byte(hex.EncodeToString(secret) + "\n"), // a secret stored in clear by mistake
		"empty":     {},
	} {
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := ks.Get(ctx, "master-share")
		collect(what, err)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", what, err)
		}
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	wrong, err := OpenFile(dir, []byte("wrong"), WithScryptWorkFactor(testWorkFactor))
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.Get(ctx, "master-share")
	collect("wrong passphrase", err)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ks.Get(ctx, "master-share")
	collect("mode 0644", err)
	collect("empty secret", ks.Put(ctx, "x", nil))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	collect("cancelled", ks.Put(cctx, "master-share", secret))

	for _, err := range errs {
		assertNoLeak(t, err, secret, testPassphrase)
	}
	// Nor does printing the keystore show the passphrase.
	assertNoLeak(t, fmt.Errorf("%v %+v %#v %s", ks, ks, ks, *ks), testPassphrase)
}

func TestFileOptions(t *testing.T) {
	dir := keysDir(t)
	if _, err := OpenFile(dir, nil); err == nil {
		t.Error("empty passphrase accepted")
	}
	if _, err := OpenFile("", testPassphrase); err == nil {
		t.Error("empty directory accepted")
	}
	for _, n := range []int{0, -1, 31} {
		if _, err := OpenFile(dir, testPassphrase, WithScryptWorkFactor(n)); err == nil {
			t.Errorf("work factor %d accepted", n)
		}
	}
	// The work factor is recorded in the file's scrypt stanza.
	ks, err := OpenFile(dir, testPassphrase, WithScryptWorkFactor(5))
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Put(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if wf := stanzaWorkFactor(t, filepath.Join(dir, "k.age")); wf != "5" {
		t.Fatalf("work factor in file = %s, want 5", wf)
	}
	// The caller may wipe its passphrase after OpenFile.
	pass := []byte("wipe me")
	ks, err = OpenFile(dir, pass, WithScryptWorkFactor(testWorkFactor))
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Put(context.Background(), "w", []byte("v")); err != nil {
		t.Fatal(err)
	}
	clear(pass)
	if _, err := ks.Get(context.Background(), "w"); err != nil {
		t.Fatalf("Get after the caller cleared its passphrase: %v", err)
	}
}

// TestFileDefaultWorkFactor checks that without options a File uses age's default
// (about a second per operation).
func TestFileDefaultWorkFactor(t *testing.T) {
	if testing.Short() {
		t.Skip("scrypt at the default work factor is slow")
	}
	dir := keysDir(t)
	ks, err := OpenFile(dir, testPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Put(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if wf := stanzaWorkFactor(t, filepath.Join(dir, "k.age")); wf != fmt.Sprint(DefaultScryptWorkFactor) {
		t.Fatalf("work factor in file = %s, want %d", wf, DefaultScryptWorkFactor)
	}
}

// stanzaWorkFactor returns the log2 N argument of the file's "-> scrypt SALT N" line.
func stanzaWorkFactor(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "->" && f[1] == "scrypt" {
			return f[3]
		}
	}
	t.Fatalf("%s has no scrypt stanza", path)
	return ""
}

// TestFileConcurrent checks that concurrent Puts and Gets of one name only ever see
// a whole value (the rename is atomic) and never a temporary file.
func TestFileConcurrent(t *testing.T) {
	ctx := context.Background()
	dir := keysDir(t)
	ks := openTestFile(t, dir)
	values := make([][]byte, 4)
	for i := range values {
		values[i] = bytes.Repeat([]byte{byte('a' + i)}, 1000)
	}
	if err := ks.Put(ctx, "k", values[0]); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range values {
		wg.Go(func() {
			for range 10 {
				if err := ks.Put(ctx, "k", values[i]); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Go(func() {
			for range 10 {
				got, err := ks.Get(ctx, "k")
				if err != nil {
					errs <- err
					return
				}
				whole := false
				for _, v := range values {
					whole = whole || bytes.Equal(got, v)
				}
				if !whole {
					errs <- fmt.Errorf("Get returned a value that was never Put (%d bytes)", len(got))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after concurrent Puts, want 1", len(entries))
	}
}
