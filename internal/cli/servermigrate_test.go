package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/internal/testbin"
)

// TestServerMigrate: `polyroot server migrate` migrates the database the environment
// names, once; a password in the config file's database_url is refused without being
// shown.
func TestServerMigrate(t *testing.T) {
	clearEnv(t)
	pg := testbin.StartPostgres(t)
	url := pg.CreateDatabase(t)
	t.Setenv(envDatabaseURL, url)
	code, out, errOut := run("server", "migrate")
	m := regexp.MustCompile(`migrated from version 0 to ([1-9][0-9]*)\b`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("first migrate: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run("server", "migrate")
	if code != 0 || !strings.Contains(out, "at version "+m[1]+", this version's: nothing to do") {
		t.Fatalf("second migrate: exit %d\n%s%s", code, out, errOut)
	}

	t.Setenv(envDatabaseURL, "")
	const secret = "Sup3rSecretPw"
	cfg := filepath.Join(t.TempDir(), "server.toml")
	withPassword := strings.Replace(url, "polyroot@", "polyroot:"+secret+"@", 1)
	if err := os.WriteFile(cfg, []byte("database_url = \""+withPassword+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run("server", "migrate", "--config", cfg)
	if code == 0 || strings.Contains(out+errOut, secret) || !strings.Contains(errOut, "holds a password: put the URL in $"+envDatabaseURL) {
		t.Fatalf("a password in the config file: exit %d\n%s%s", code, out, errOut)
	}
	// A password from PGPASSWORD (or a password file) is not one in the config file.
	if err := os.WriteFile(cfg, []byte("database_url = \""+url+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSWORD", "from-the-environment")
	if code, out, errOut = run("server", "migrate", "--config", cfg); code != 0 {
		t.Fatalf("a config-file URL without a password, PGPASSWORD set: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut = run("server", "migrate"); code == 0 || !strings.Contains(errOut, "needs the database URL") {
		t.Fatalf("no URL: exit %d\n%s", code, errOut)
	}
}
