package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/polyroot/polyroot/internal/oidcop"
)

func TestServerOIDCClient(t *testing.T) {
	clearEnv(t)
	code, out, errOut := run("server", "oidc-client", "--redirect-uri", "https://shop.example/cb", "shop")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var fc serverFileConfig
	if _, err := toml.Decode(out, &fc); err != nil || len(fc.OIDC.Clients) != 1 {
		t.Fatalf("the printed table does not decode: %v\n%s", err, out)
	}
	cc := fc.OIDC.Clients[0]
	m := regexp.MustCompile(`client secret of "shop" .*: ([0-9a-f]{64})\n`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("no secret on stderr: %q", errOut)
	}
	sum := sha256.Sum256([]byte(m[1]))
	if cc.ID != "shop" || cc.AuthMethod != oidcop.AuthSecretBasic || cc.SecretSHA256 != hex.EncodeToString(sum[:]) || strings.Contains(out, m[1]) {
		t.Fatalf("table %+v; the secret must be only on stderr, its hash in the table", cc)
	}
	for name, args := range map[string][]string{
		"fail/http-redirect": {"--redirect-uri", "http://shop.example/cb", "shop"},
		"fail/no-id":         {"--redirect-uri", "https://shop.example/cb"},
		"fail/no-redirect":   {"shop"},
	} {
		t.Run(name, func(t *testing.T) {
			if code, _, _ := run(append([]string{"server", "oidc-client"}, args...)...); code == 0 {
				t.Fatal("accepted")
			}
		})
	}
}
