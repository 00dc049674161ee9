package testbin

import (
	"os"
	"testing"
)

// ChromiumEnv is the environment variable that names the Chromium binary the browser
// tests (internal/browsertest) drive.
const ChromiumEnv = "POLYROOT_CHROMIUM_BIN"

// debianChromium is where Debian's chromium package (`make chromium`) puts the browser.
const debianChromium = "/usr/bin/chromium"

// Chromium returns the path of a Chromium browser for a browser test: ChromiumEnv's
// value if it is set (it must name an executable file, else the test fails), else
// Debian's /usr/bin/chromium, else "chromium" on PATH. When there is none the test is
// skipped under plain `go test`, and fails when Required (`make test`, which installs
// the browser with `make chromium` first).
func Chromium(t testing.TB) string {
	t.Helper()
	if os.Getenv(ChromiumEnv) == "" {
		if fi, err := os.Stat(debianChromium); err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0 {
			return debianChromium
		}
	}
	return Path(t, ChromiumEnv, "chromium")
}
