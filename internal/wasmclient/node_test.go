package wasmclient

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/polyroot/polyroot/internal/testbin"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/server"
)

var (
	wasmOnce sync.Once
	wasmFile string
	wasmErr  string
)

// goRoot is `go env GOROOT`: the tree of the go command on PATH, with its tools and
// WebAssembly support files (runtime.GOROOT names the tree this test was built with).
var goRoot = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOROOT: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
})

// mustGoRoot is goRoot, failing t on an error.
func mustGoRoot(t testing.TB) string {
	t.Helper()
	root, err := goRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildWASM builds cmd/polyroot-wasm as the Makefile does, once per test binary.
func buildWASM(t *testing.T) string {
	t.Helper()
	wasmOnce.Do(func() {
		dir, err := os.MkdirTemp("", "polyroot-wasm-")
		if err != nil {
			wasmErr = err.Error()
			return
		}
		wasmFile = filepath.Join(dir, "polyroot.wasm")
		root, err := goRoot()
		if err != nil {
			wasmErr = err.Error()
			return
		}
		cmd := exec.Command(filepath.Join(root, "bin", "go"), BuildArgs(wasmFile)...)
		cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			wasmErr = "go build: " + err.Error() + "\n" + string(b)
		}
	})
	if wasmErr != "" {
		t.Fatal(wasmErr)
	}
	return wasmFile
}

// nodeScript runs the API in Node as a page would: an in-memory polyrootStore, then
// status, enrol (pinned), login, a wrong PIN, refreshPermits, a bad code, a
// trust-on-first-use enrolment at a second origin, and there a replacing enrolment that
// fails.
const nodeScript = `
const fs = require("fs");
globalThis.crypto ??= require("crypto").webcrypto;
require(process.env.WASM_EXEC);
const mem = new Map();
globalThis.polyrootStore = {
  async get(name) { return mem.has(name) ? mem.get(name) : null; },
  async put(name, data) { mem.set(name, new Uint8Array(data)); },
};
const settle = (p) => p.then((v) => ({ ok: v }), (e) => ({ err: { kind: e.kind, triesLeft: e.triesLeft, message: e.message, isError: e instanceof Error } }));
(async () => {
  const go = new Go();
  const { instance } = await WebAssembly.instantiate(fs.readFileSync(process.env.WASM), go.importObject);
  go.run(instance);
  const env = process.env, out = {};
  out.status0 = await settle(polyroot.status(env.ORIGIN));
  out.loginEarly = await settle(polyroot.login(env.ORIGIN, env.PIN));
  out.enrol = await settle(polyroot.enrol(env.ORIGIN, env.CODE, env.PIN, env.FP));
  out.status1 = await settle(polyroot.status(env.ORIGIN));
  out.login = await settle(polyroot.login(env.ORIGIN, env.PIN));
  out.wrong = await settle(polyroot.login(env.ORIGIN, "0000"));
  out.refresh = await settle(polyroot.refreshPermits(env.ORIGIN, out.login.ok ? out.login.ok.accessToken : ""));
  out.badCode = await settle(polyroot.enrol(env.ORIGIN, "AAAA-BBBB", env.PIN, env.FP));
  out.tofu = await settle(polyroot.enrol(env.ORIGIN2, env.CODE2, env.PIN, ""));
  out.tofuLogin = await settle(polyroot.login(env.ORIGIN2, env.PIN));
  out.wrongFP = await settle(polyroot.enrol(env.ORIGIN2, env.CODE2, env.PIN, "00".repeat(32)));
  out.afterWrongFP = await settle(polyroot.login(env.ORIGIN2, env.PIN));
  // A replacing enrolment that fails keeps what the origin held: ORIGIN2 made to pin
  // another domain's bundle (as a browser does after its domain reshared), then a bad
  // code with the fingerprint of the bundle ORIGIN2 serves now.
  mem.set(env.ORIGIN2 + "/bundle.json", new Uint8Array(Buffer.from(env.OTHER_BUNDLE, "base64")));
  mem.set(env.ORIGIN2 + "/bundle.sha256", new Uint8Array(Buffer.from(env.OTHER_FP + "\n")));
  // The identity (the token file's id, token and seal key: its permits may change
  // meanwhile, renewed in the background after the last login) and the bundle files.
  const held = () => {
    const file = (n) => mem.get(env.ORIGIN2 + "/" + n);
    const tok = file("token.json"), t = tok && tok.length ? JSON.parse(Buffer.from(tok).toString()) : {};
    return JSON.stringify([t.id, t.token, t.seal_key, ...["bundle.json", "bundle.sha256"].map((n) => file(n) ? Buffer.from(file(n)).toString("base64") : "none")]);
  };
  const before = held();
  out.replaceBadCode = await settle(polyroot.enrol(env.ORIGIN2, "AAAA-BBBB", env.PIN, env.FP));
  out.replaceHeld = [before, held()];
  out.keys = [...mem.keys()].sort();
  out.stored = [...mem.values()].map((v) => Buffer.from(v).toString("latin1")).join("\n");
  fs.writeSync(1, JSON.stringify(out) + "\n"); // console.log to a pipe is cut at 64 KiB by exit
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
`

type settled struct {
	OK  map[string]any `json:"ok"`
	Err *struct {
		Kind      string   `json:"kind"`
		TriesLeft *float64 `json:"triesLeft"`
		Message   string   `json:"message"`
		IsError   bool     `json:"isError"`
	} `json:"err"`
}

// TestWASMNode runs the WebAssembly client in Node against a real auth server and
// DTAs on loopback (plain http, which the API allows only there): the JavaScript API
// end to end, without a browser (internal/browsertest drives one).
func TestWASMNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the WebAssembly client and runs it in Node")
	}
	// Node.js is on every machine that runs make test (the pinned solc comes from npm).
	node := testbin.Path(t, "POLYROOT_NODE_BIN", "node")
	wasm := buildWASM(t)

	d := testdomain.New(t, "wasm.example.com", 3, 3600)
	ctx := context.Background()
	sQ, err := server.Provision(ctx, d.Bundle, d.Registrar, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, tokenKey, _ := ed25519.GenerateKey(nil)
	const admin = "admin-token-0123456789abcdef"
	srv, err := server.New(ctx, server.Config{Bundle: d.Bundle, BundleFile: d.BundleFile, RegistrarKey: d.Registrar, ServerKey: sQ,
		TokenKey: tokenKey, AdminToken: admin, DataDir: t.TempDir(), RatePerSecond: 1e6, RateBurst: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	enrolment := func(id string) string {
		body, _ := json.Marshal(wire.EnrolmentRequest{ID: id, PermitDays: 2})
		req, _ := http.NewRequest("POST", hs.URL+"/v1/admin/enrolments", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var created wire.EnrolmentCreated
		if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || created.Code == "" {
			t.Fatalf("enrolment: %d %v", resp.StatusCode, err)
		}
		return created.Code
	}
	code, code2 := enrolment("wanda@example.com"), enrolment("xavi@example.com")
	other := testdomain.New(t, "other.example.com", 2, 0)
	origin2 := strings.Replace(hs.URL, "127.0.0.1", "localhost", 1)

	script := filepath.Join(t.TempDir(), "run.js")
	if err := os.WriteFile(script, []byte(nodeScript), 0o644); err != nil {
		t.Fatal(err)
	}
	const pin = "8403917256" // long enough not to turn up in the stored files by chance
	cmd := exec.Command(node, script)
	cmd.Env = append(os.Environ(), "WASM="+wasm, "WASM_EXEC="+filepath.Join(mustGoRoot(t), "lib", "wasm", "wasm_exec.js"),
		"ORIGIN="+hs.URL, "ORIGIN2="+origin2, "CODE="+code, "CODE2="+code2, "PIN="+pin, "FP="+d.Fingerprint,
		"OTHER_BUNDLE="+base64.StdEncoding.EncodeToString(other.BundleFile), "OTHER_FP="+other.Fingerprint)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var out struct {
		Status0, LoginEarly, Enrol, Status1, Login, Wrong, Refresh, BadCode, Tofu, TofuLogin, WrongFP, AfterWrongFP, ReplaceBadCode settled
		ReplaceHeld                                                                                                                 [2]string
		Keys                                                                                                                        []string
		Stored                                                                                                                      string
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	ok := func(name string, s settled) map[string]any {
		t.Helper()
		if s.Err != nil {
			t.Fatalf("%s: rejected: %+v", name, *s.Err)
		}
		return s.OK
	}
	fail := func(name string, s settled, kind string) {
		t.Helper()
		if s.Err == nil || s.Err.Kind != kind || !s.Err.IsError {
			t.Fatalf("%s: %+v, want an Error of kind %q", name, s, kind)
		}
		for _, secret := range []string{pin, code, code2} {
			if strings.Contains(s.Err.Message, secret) {
				t.Fatalf("%s: the message %q holds a secret", name, s.Err.Message)
			}
		}
	}
	if st := ok("status before", out.Status0); st["bootstrapped"] != false || st["enrolled"] != false || st["id"] != "" || st["permitsUntil"] != "" {
		t.Fatalf("status before enrolment %v", st)
	}
	fail("login before", out.LoginEarly, KindNotEnrolled)
	if r := ok("enrol", out.Enrol); r["id"] != "wanda@example.com" {
		t.Fatalf("enrol %v", r)
	}
	if st := ok("status", out.Status1); st["bootstrapped"] != true || st["enrolled"] != true || st["id"] != "wanda@example.com" ||
		st["domain"] != "wasm.example.com" || st["currentPermit"] != true || st["permitsUntil"] == "" {
		t.Fatalf("status %v", st)
	}
	login := ok("login", out.Login)
	if login["id"] != "wanda@example.com" || login["accessToken"] == "" || login["expiresAt"] == "" {
		t.Fatalf("login %v", login)
	}
	fail("wrong PIN", out.Wrong, KindWrongPIN)
	if out.Wrong.Err.TriesLeft == nil || *out.Wrong.Err.TriesLeft != 2 {
		t.Fatalf("wrong PIN: triesLeft %v", out.Wrong.Err.TriesLeft)
	}
	if r := ok("refreshPermits", out.Refresh); r["permitsUntil"] == "" {
		t.Fatalf("refreshPermits %v", r)
	}
	fail("bad code", out.BadCode, KindBadCode)
	if r := ok("trust on first use", out.Tofu); r["id"] != "xavi@example.com" {
		t.Fatalf("enrol on first use %v", r)
	}
	ok("login after trust on first use", out.TofuLogin)
	fail("wrong fingerprint", out.WrongFP, KindBundleMismatch)
	ok("login after a wrong fingerprint", out.AfterWrongFP)
	fail("a replacing enrolment with a bad code", out.ReplaceBadCode, KindBadCode)
	if before, after := out.ReplaceHeld[0], out.ReplaceHeld[1]; before != after || !strings.HasPrefix(before, `["xavi@example.com",`) {
		t.Errorf("a replacing enrolment that failed lost the identity or bundle the origin held:\nbefore %s\nafter  %s", before, after)
	}
	// Both origins keep their own files, under their own names.
	for _, o := range []string{hs.URL, origin2} {
		found := false
		for _, k := range out.Keys {
			found = found || k == o+"/token.json"
		}
		if !found {
			t.Errorf("no %s/token.json in %v", o, out.Keys)
		}
	}
	if strings.Contains(stderr.String(), "polyroot:") {
		t.Errorf("node's console: %s", stderr.String())
	}
	if strings.Contains(out.Stored, pin) || strings.Contains(out.Stored, code) {
		t.Error("the stored files hold the PIN or the code")
	}
}
