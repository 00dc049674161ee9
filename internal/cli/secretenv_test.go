package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretEnv(t *testing.T) {
	const name = "POLYROOT_TEST_SECRET"
	dir := t.TempDir()
	file := func(content string, mode os.FileMode) string {
		p := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "-"))
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	for _, tc := range []struct {
		name    string
		env     string // "-": unset
		path    func() string
		want    string
		wantErr string
	}{
		{"ok/unset", "-", nil, "", ""},
		{"ok/env", "from env", nil, "from env", ""},
		{"ok/file", "-", func() string { return file("from file\n", 0o600) }, "from file", ""},
		{"ok/credential-0400-crlf", "-", func() string { return file("cred\r\n", 0o400) }, "cred", ""},
		{"ok/keeps-inner-newlines", "-", func() string { return file("a\nb\n\n", 0o600) }, "a\nb\n", ""},
		{"fail/both", "x", func() string { return file("y", 0o600) }, "", "both POLYROOT_TEST_SECRET and POLYROOT_TEST_SECRET_FILE are set"},
		{"ok/env-and-empty-file-variable", "x", func() string { return "" }, "x", ""},
		{"fail/group-readable", "-", func() string { return file("y", 0o640) }, "", "only its owner can read"},
		{"fail/directory", "-", func() string { return dir }, "", "must be a regular file"},
		{"fail/missing", "-", func() string { return filepath.Join(dir, "nope") }, "", "POLYROOT_TEST_SECRET_FILE: open"},
		{"fail/empty-path", "-", func() string { return "" }, "", "POLYROOT_TEST_SECRET_FILE is empty"},
		{"fail/empty-file", "-", func() string { return file("\n", 0o600) }, "", "is empty"},
		{"fail/too-large", "-", func() string { return file(strings.Repeat("x", maxSecretFile+1), 0o600) }, "", "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(name, "")
			t.Setenv(name+"_FILE", "")
			os.Unsetenv(name)
			os.Unsetenv(name + "_FILE")
			if tc.env != "-" {
				os.Setenv(name, tc.env)
			}
			if tc.path != nil {
				os.Setenv(name+"_FILE", tc.path())
			}
			got, err := secretEnv(name)
			if tc.wantErr == "" && (err != nil || got != tc.want) {
				t.Fatalf("secretEnv = %q, %v; want %q", got, err, tc.want)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("secretEnv = %q, %v; want an error with %q", got, err, tc.wantErr)
			}
		})
	}
}

// TestSecretFilesInCommands: dta init reads the keystore passphrase from
// POLYROOT_KEYSTORE_PASSPHRASE_FILE, as a systemd credential would give it.
func TestSecretFilesInCommands(t *testing.T) {
	clearEnv(t)
	t.Setenv(envScryptLogN, "10")
	dir := t.TempDir()
	pass := filepath.Join(dir, "passphrase")
	if err := os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envPassphrase+"_FILE", pass)
	code, out, errOut := run("dta", "init", "--domain", "api.example.com", "--index", "1", "--url", "https://dta1.example.net",
		"--keystore-dir", filepath.Join(dir, "keys"), "--out", filepath.Join(dir, "dta-1.json"))
	if code != 0 {
		t.Fatalf("dta init with %s_FILE: exit %d\n%s%s", envPassphrase, code, out, errOut)
	}
}
