package cli

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/polyroot/polyroot/pairing"
)

// TestVersionOutput: `polyroot version` prints one line in the documented format.
func TestVersionOutput(t *testing.T) {
	code, out, errOut := run("version")
	want := regexp.MustCompile(`^polyroot \S+( \(rev [0-9a-f]{7,12}(, \d{4}-\d{2}-\d{2})?(, modified)?\))? go\S+ protocol \S+\n$`)
	if code != 0 || !want.MatchString(out) {
		t.Fatalf("polyroot version: exit %d, %q (stderr %q)", code, out, errOut)
	}
	if !strings.HasSuffix(out, " "+runtime.Version()+" protocol "+pairing.LoginVersion+"\n") {
		t.Errorf("polyroot version: %q lacks the Go version %s or the protocol %s", out, runtime.Version(), pairing.LoginVersion)
	}
}

// TestVersionLine: the injected version wins, then the module's; the revision and
// date appear when the build recorded them.
func TestVersionLine(t *testing.T) {
	vcs := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "3f1c2a9b7d10e4f5a6b7c8d9e0f1a2b3c4d5e6f7"},
		{Key: "vcs.time", Value: "2026-11-22T17:04:05Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	proto := " protocol " + pairing.LoginVersion
	for _, tc := range []struct {
		name     string
		info     *debug.BuildInfo
		injected string
		want     string
	}{
		{"injected-and-vcs", vcs, "v0.3.0-2-g3f1c2a9", "polyroot v0.3.0-2-g3f1c2a9 (rev 3f1c2a9b7d10, 2026-11-22, modified) go1.26.8" + proto},
		{"module", &debug.BuildInfo{Main: debug.Module{Version: "v0.3.0"}}, "", "polyroot v0.3.0 go1.26.8" + proto},
		{"devel", vcs, "", "polyroot (devel) (rev 3f1c2a9b7d10, 2026-11-22, modified) go1.26.8" + proto},
		{"no-build-info", nil, "", "polyroot (devel) go1.26.8" + proto},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionLine(tc.info, tc.injected, "go1.26.8"); got != tc.want {
				t.Errorf("versionLine = %q\nwant          %q", got, tc.want)
			}
		})
	}
}

// TestProbe: polyroot probe exits 0 on 200 only, and says why otherwise.
func TestProbe(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.Write([]byte("ready\n"))
		case "/moved":
			http.Redirect(w, r, "/readyz", http.StatusFound)
		case "/degraded":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"status":"degraded","checks":{"keys":"ok","dtas":"degraded: DTA 2 unreachable\u001b[31m"}}`))
		case "/later":
			if calls.Add(1) < 3 {
				http.Error(w, "starting", http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte("ready\n"))
		default:
			http.Error(w, "not ready: DTA 2 (http://dta-2:8442)\n\x1b[31mkeys", http.StatusServiceUnavailable)
		}
	}))
	defer ts.Close()
	for _, tc := range []struct {
		args    []string
		code    int
		wantErr string
	}{
		{[]string{ts.URL + "/readyz"}, 0, ""},
		{[]string{"--timeout", "2s", ts.URL + "/readyz"}, 0, ""},
		{[]string{ts.URL + "/degraded"}, 0, "is ready but degraded: dtas: degraded: DTA 2 unreachable?[31m"},
		{[]string{"--wait", "5s", ts.URL + "/later"}, 0, ""},
		{[]string{"--wait", "300ms", ts.URL + "/down"}, 1, "503 Service Unavailable"},
		{[]string{ts.URL + "/down"}, 1, "503 Service Unavailable: not ready: DTA 2 (http://dta-2:8442) ?[31mkeys"},
		{[]string{ts.URL + "/moved"}, 1, "302 Found"},
		{[]string{"http://127.0.0.1:1/readyz"}, 1, "connection refused"},
		{[]string{"ftp://example.com/"}, 1, "want an http:// or https:// URL"},
		{nil, 1, "give one URL"},
	} {
		code, out, errOut := run(append([]string{"probe"}, tc.args...)...)
		if code != tc.code || out != "" || !strings.Contains(errOut, tc.wantErr) {
			t.Errorf("polyroot probe %v: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errOut, tc.code, tc.wantErr)
		}
	}
}
