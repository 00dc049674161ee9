package cli

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/pairing"
)

// TestBundleAssembleDTAURLs: bundle assemble refuses a plain http:// DTA URL on a host
// that is not loopback unless --allow-insecure-http is given.
func TestBundleAssembleDTAURLs(t *testing.T) {
	const domain = "api.example.com"
	dir := t.TempDir()
	reg := filepath.Join(dir, "registrar.pem")
	if code, _, errOut := run("registrar", "keygen", "--out", reg); code != 0 {
		t.Fatal(errOut)
	}
	record := func(index uint32, url string) string {
		pub, _, _ := ed25519.GenerateKey(nil)
		s, err := pairing.RandomScalar(nil)
		if err != nil {
			t.Fatal(err)
		}
		rec := bundle.DTA{Index: index, URL: url, Commitment: hex.EncodeToString(pairing.G1Generator().Mul(s).Bytes()),
			SigningKey: hex.EncodeToString(pub), LogOrigin: dta.LogOrigin(domain, index)}
		b, _ := json.Marshal(rec)
		p := filepath.Join(t.TempDir(), "dta.json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	peer := record(2, "https://dta2.example.net:8441")
	cases := []struct {
		name, url string
		extra     []string
		wantErr   string
	}{
		{name: "ok/https", url: "https://dta1.example.net:8441"},
		{name: "ok/http-loopback", url: "http://127.0.0.1:8441"},
		{name: "ok/http-loopback-ipv6", url: "http://[::1]:8441"},
		{name: "ok/http-localhost", url: "http://localhost:8441"},
		{name: "fail/http-non-loopback", url: "http://dta-1:8441", wantErr: "DTA 1's URL http://dta-1:8441 is plain http on a host that is not loopback"},
		{name: "ok/http-allowed-explicitly", url: "http://dta-1:8441", extra: []string{"--allow-insecure-http"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "bundle.json")
			args := append([]string{"bundle", "assemble", "--domain", domain, "--registrar-key", reg,
				"--record", record(1, tc.url), "--record", peer, "--out", out}, tc.extra...)
			code, _, errOut := run(args...)
			if tc.wantErr == "" {
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errOut)
				}
				return
			}
			if code == 0 || !strings.Contains(errOut, tc.wantErr) || !strings.Contains(errOut, "--allow-insecure-http") {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("a bundle was written")
			}
		})
	}
}

// TestDeployPlainHTTPDTAsExplicit: where a deploy walk-through gives its DTAs plain
// http:// URLs on hosts other than loopback (the compose set-up), the bundle assemble
// of that section says --allow-insecure-http and its client bootstrap and enroll say
// --allow-insecure-dta-http; sections on loopback or https need neither.
func TestDeployPlainHTTPDTAsExplicit(t *testing.T) {
	for _, name := range []string{"README.md", filepath.Join("examples", "README.md")} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(deployDir(t), name)
			lines, numbers := logicalLines(t, file)
			plain, inBlock := false, false // plain: this section's DTAs are http off loopback
			for i, line := range lines {
				switch {
				case strings.HasPrefix(line, "## "):
					plain = false
					continue
				case strings.HasPrefix(line, "```"):
					inBlock = !inBlock
					continue
				case !inBlock:
					continue
				}
				words := strings.Fields(line)
				for j := 0; j+1 < len(words); j++ {
					if words[j] != "--url" || !strings.HasPrefix(words[j+1], "http://") {
						continue
					}
					host := strings.TrimPrefix(words[j+1], "http://")
					host, _, _ = strings.Cut(host, "/")
					if strings.HasPrefix(host, "[") {
						host, _, _ = strings.Cut(strings.TrimPrefix(host, "["), "]")
					} else {
						host, _, _ = strings.Cut(host, ":")
					}
					plain = plain || !bundle.IsLoopbackHost(host)
				}
				needs := ""
				switch {
				case strings.Contains(line, "bundle assemble"):
					needs = "--allow-insecure-http"
				case strings.Contains(line, "client bootstrap"), strings.Contains(line, "client enroll"):
					needs = "--allow-insecure-dta-http"
				default:
					continue
				}
				if has := slices.Contains(words, needs); has != plain {
					t.Errorf("%s:%d: DTAs on plain http off loopback: %v, but %s given: %v", file, numbers[i], plain, needs, has)
				}
			}
		})
	}
}
