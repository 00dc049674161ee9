package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/polyroot/polyroot/internal/testbin"
)

// clearEnv unsets every POLYROOT_* and VAULT_* variable for the test (but those that
// name test programs), so that the caller's environment cannot change what a test
// resolves.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == testbin.IntegrationEnv || strings.HasSuffix(k, "_BIN") {
			continue // how integration tests find their programs
		}
		if strings.HasPrefix(k, "POLYROOT_") || strings.HasPrefix(k, "VAULT_") {
			t.Setenv(k, "") // restored after the test
			os.Unsetenv(k)
		}
	}
}

func examplesDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "deploy", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// resolve runs `dta serve … --print-config` through Main and decodes what it prints.
func resolve(t *testing.T, args ...string) *fileConfig {
	t.Helper()
	code, out, errOut := run(append(append([]string{"dta", "serve"}, args...), "--print-config")...)
	if code != 0 {
		t.Fatalf("dta serve %v --print-config: exit %d\n%s", args, code, errOut)
	}
	var got fileConfig
	md, err := toml.Decode(out, &got)
	if err != nil {
		t.Fatalf("--print-config printed invalid TOML: %v\n%s", err, out)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("--print-config printed unknown keys %v", u)
	}
	return &got
}

// defaults is what dta serve resolves with no file, environment or flags, plus the
// required settings.
func defaults() fileConfig {
	var c fileConfig
	c.Listen, c.MetricsListen = defaultListen, defaultDTAMetricsListen
	c.CheckpointInterval, c.ShutdownTimeout = duration(defaultCheckpointInterval), duration(defaultShutdownTimeout)
	c.Log.Format, c.Log.Level = "json", "info"
	c.Rate.PerSecond, c.Rate.Burst = defaultRatePerSecond, defaultRateBurst
	c.LogRate.PerSecond, c.LogRate.Burst = defaultLogRatePerSecond, defaultLogRateBurst
	c.Keystore.Type = "file"
	c.Keystore.Vault.Mount, c.Keystore.Vault.AppRoleMount = "secret", "approle"
	c.Chain.Type, c.Chain.AnchorPeriod, c.Chain.Confirmations = defaultChain, duration(defaultAnchorPeriod), defaultConfirmations
	return c
}

// TestExampleConfigs loads each deploy/examples config through the command's flag and
// config machinery and checks every value, so the examples cannot rot.
func TestExampleConfigs(t *testing.T) {
	clearEnv(t)
	ex := examplesDir(t)
	want := map[string]func(c *fileConfig){
		"dta-1.toml": func(c *fileConfig) {
			c.Listen, c.MetricsListen, c.Index = "127.0.0.1:8441", "127.0.0.1:9441", 1
			c.Bundle, c.DataDir, c.Keystore.Dir = filepath.Join(ex, "data/bundle.json"), filepath.Join(ex, "data/dta-1"), filepath.Join(ex, "data/dta-1-keys")
		},
		"dta-2.toml": func(c *fileConfig) {
			c.Listen, c.MetricsListen, c.Index = "127.0.0.1:8442", "127.0.0.1:9442", 2
			c.Bundle, c.DataDir, c.Keystore.Dir = filepath.Join(ex, "data/bundle.json"), filepath.Join(ex, "data/dta-2"), filepath.Join(ex, "data/dta-2-keys")
			c.Log.Format = "text"
		},
		"dta-3.toml": func(c *fileConfig) {
			c.Listen, c.MetricsListen, c.Index = "127.0.0.1:8443", "127.0.0.1:9443", 3
			c.Bundle, c.DataDir, c.Keystore.Dir = filepath.Join(ex, "data/bundle.json"), filepath.Join(ex, "data/dta-3"), filepath.Join(ex, "data/dta-3-keys")
			c.CheckpointInterval = duration(2 * time.Second)
			c.Rate.PerSecond, c.Rate.Burst = 20, 40
		},
	}
	seen := map[string]string{}
	for name, edit := range want {
		t.Run(name, func(t *testing.T) {
			got := resolve(t, "--config", filepath.Join(ex, name))
			exp := defaults()
			edit(&exp)
			if !reflect.DeepEqual(*got, exp) {
				t.Fatalf("resolved\n%+v\nwant\n%+v", *got, exp)
			}
			// Three DTAs on one machine: nothing may be shared.
			for _, v := range []string{got.Listen, got.MetricsListen, got.DataDir, got.Keystore.Dir} {
				if other, dup := seen[v]; dup {
					t.Fatalf("%s and %s both use %s", other, name, v)
				}
				seen[v] = name
			}
		})
	}

	// The examples, with their commented-out settings, show every key of the schema.
	t.Run("examples-show-every-key", func(t *testing.T) {
		var zero bytes.Buffer
		if err := toml.NewEncoder(&zero).Encode(fileConfig{}); err != nil {
			t.Fatal(err)
		}
		var tree map[string]any
		if _, err := toml.Decode(zero.String(), &tree); err != nil {
			t.Fatal(err)
		}
		schema := map[string]any{}
		flatten("", tree, schema)
		commented := regexp.MustCompile(`(?m)^# ?([a-z_]+ = |\[)`)
		shown := map[string]bool{}
		for name := range want {
			raw, err := os.ReadFile(filepath.Join(ex, name))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), name)
			uncommented := commented.ReplaceAllString(string(raw), "$1")
			if err := os.WriteFile(path, []byte(uncommented), 0o600); err != nil {
				t.Fatal(err)
			}
			f := &configFile{path: path}
			if err := f.load(); err != nil {
				t.Fatalf("%s with its commented settings enabled: %v", name, err)
			}
			for _, k := range f.keys() {
				shown[k] = true
			}
		}
		var missing []string
		for k := range schema {
			if !shown[k] {
				missing = append(missing, k)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Fatalf("no example shows %v", missing)
		}
	})
}

// TestConfigPrecedence: flags > environment > file > defaults.
func TestConfigPrecedence(t *testing.T) {
	clearEnv(t)
	ex := examplesDir(t)
	cfg := filepath.Join(ex, "dta-1.toml")
	base := resolve(t, "--config", cfg)

	t.Run("env-over-file", func(t *testing.T) {
		t.Setenv("POLYROOT_DTA_LISTEN", "127.0.0.1:9000")
		t.Setenv("POLYROOT_DTA_INDEX", "7")
		t.Setenv("POLYROOT_LOG_FORMAT", "text")
		t.Setenv("POLYROOT_DTA_CHECKPOINT_INTERVAL", "250ms")
		got := resolve(t, "--config", cfg)
		if got.Listen != "127.0.0.1:9000" || got.Index != 7 || got.Log.Format != "text" ||
			got.CheckpointInterval != duration(250*time.Millisecond) || got.DataDir != base.DataDir {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("flag-over-env", func(t *testing.T) {
		t.Setenv("POLYROOT_DTA_LISTEN", "127.0.0.1:9000")
		got := resolve(t, "--config", cfg, "--listen", "127.0.0.1:9001", "--keystore-dir", "rel/keys")
		// A relative path from a flag stays relative to the working directory.
		if got.Listen != "127.0.0.1:9001" || got.Keystore.Dir != "rel/keys" {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("empty-env-is-unset", func(t *testing.T) {
		t.Setenv("POLYROOT_DTA_LISTEN", "")
		if got := resolve(t, "--config", cfg); got.Listen != base.Listen {
			t.Fatalf("listen %q", got.Listen)
		}
	})
	t.Run("config-from-env", func(t *testing.T) {
		t.Setenv("POLYROOT_DTA_CONFIG", cfg)
		if got := resolve(t); !reflect.DeepEqual(got, base) {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("defaults-without-file", func(t *testing.T) {
		got := resolve(t, "--bundle", "b.json", "--index", "1", "--data-dir", "d", "--keystore-dir", "k")
		exp := defaults()
		exp.Bundle, exp.Index, exp.DataDir, exp.Keystore.Dir = "b.json", 1, "d", "k"
		if !reflect.DeepEqual(*got, exp) {
			t.Fatalf("%+v", got)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full := "bundle = \"b.json\"\nindex = 1\ndata_dir = \"d\"\n[keystore]\ndir = \"k\"\n"
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"fail/unknown-key", []string{"--config", write("unknown.toml", full+"lisen = \"x\"\n")}, "unknown setting(s) keystore.lisen"},
		{"fail/wrong-type", []string{"--config", write("type.toml", "index = \"one\"\n")}, "index"},
		{"fail/bad-duration", []string{"--config", write("dur.toml", "checkpoint_interval = \"soon\"\n"+full)}, "soon"},
		{"fail/not-toml", []string{"--config", write("garbage.toml", "this is not toml\n")}, "garbage.toml"},
		{"fail/missing-file", []string{"--config", filepath.Join(dir, "none.toml")}, "none.toml"},
		{"fail/no-bundle", []string{"--index", "1", "--data-dir", "d", "--keystore-dir", "k"}, "no trust bundle: give --bundle, $POLYROOT_DTA_BUNDLE or bundle"},
		{"fail/no-index", []string{"--config", write("noindex.toml", "bundle = \"b\"\ndata_dir = \"d\"\n")}, "no DTA index"},
		{"fail/log-format", []string{"--config", write("ok.toml", full), "--log-format", "xml"}, "--log-format \"xml\""},
		{"fail/tls-half", []string{"--config", write("ok2.toml", full), "--tls-cert", "c.pem"}, "both --tls-cert and --tls-key"},
		{"fail/keystore-type", []string{"--config", write("ok3.toml", full), "--keystore", "hsm"}, "want file or vault"},
		{"fail/vault-no-addr", []string{"--config", write("ok4.toml", full), "--keystore", "vault"}, "no Vault address"},
		{"fail/slow-checkpoints", []string{"--config", write("ok5.toml", full), "--checkpoint-interval", "10ms"}, "below 100ms"},
		{"fail/log-rate", []string{"--config", write("ok7.toml", full+"[log_rate]\nper_second = 0\n")}, "log rate limit 0/s with burst 1000: both must be positive"},
		{"fail/metrics-on-the-api-port", []string{"--config", write("ok6.toml", full), "--metrics-listen", "127.0.0.1:8441"}, "share a port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(append(append([]string{"dta", "serve"}, tc.args...), "--check-config")...)
			if code != 1 || !strings.Contains(errOut, tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, errOut, tc.wantErr)
			}
		})
	}
}

// resolveServer runs `server serve … --print-config` through Main and decodes what it
// prints.
func resolveServer(t *testing.T, args ...string) *serverFileConfig {
	t.Helper()
	code, out, errOut := run(append(append([]string{"server", "serve"}, args...), "--print-config")...)
	if code != 0 {
		t.Fatalf("server serve %v --print-config: exit %d\n%s", args, code, errOut)
	}
	var got serverFileConfig
	md, err := toml.Decode(out, &got)
	if err != nil {
		t.Fatalf("--print-config printed invalid TOML: %v\n%s", err, out)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("--print-config printed unknown keys %v", u)
	}
	return &got
}

// TestServerExampleConfig loads deploy/examples/server.toml through the command's flag
// and config machinery, checks every value and the precedence flags > environment >
// file > defaults, and that the example (with its commented settings) shows every key.
func TestServerExampleConfig(t *testing.T) {
	clearEnv(t)
	ex := examplesDir(t)
	cfg := filepath.Join(ex, "server.toml")
	var want serverFileConfig
	want.Listen, want.MetricsListen = "127.0.0.1:8440", "127.0.0.1:9440"
	want.Bundle, want.RegistrarKey = filepath.Join(ex, "data/bundle.json"), filepath.Join(ex, "data/registrar.pem")
	want.DataDir, want.Keystore.Dir = filepath.Join(ex, "data/server"), filepath.Join(ex, "data/server-keys")
	want.MaxFailures, want.MaxFailuresPerDay, want.TokenTTL, want.CodeTTL = 3, 10, duration(15*time.Minute), duration(24*time.Hour)
	want.ShutdownTimeout = duration(30 * time.Second)
	want.Log.Format, want.Log.Level = "text", "info"
	want.Rate.PerSecond, want.Rate.Burst = 50, 100
	want.Login = loginConfig{BatchSize: 64, BatchWindow: duration(10 * time.Millisecond), PointCache: 65536}
	want.Keystore.Type = "file"
	want.Keystore.Vault.Mount, want.Keystore.Vault.AppRoleMount = "secret", "approle"
	want.Store = storeBolt
	if got := resolveServer(t, "--config", cfg); !reflect.DeepEqual(*got, want) {
		t.Fatalf("resolved\n%+v\nwant\n%+v", *got, want)
	}

	t.Run("env-over-file", func(t *testing.T) {
		t.Setenv("POLYROOT_SERVER_LISTEN", "127.0.0.1:8450")
		t.Setenv("POLYROOT_SERVER_TOKEN_TTL", "5m")
		t.Setenv("POLYROOT_LOG_FORMAT", "json")
		got := resolveServer(t, "--config", cfg)
		if got.Listen != "127.0.0.1:8450" || got.TokenTTL != duration(5*time.Minute) || got.Log.Format != "json" || got.DataDir != want.DataDir {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("flag-over-env", func(t *testing.T) {
		t.Setenv("POLYROOT_SERVER_LISTEN", "127.0.0.1:8450")
		got := resolveServer(t, "--config", cfg, "--listen", "127.0.0.1:8451", "--max-failures", "5",
			"--max-failures-per-day", "7", "--metrics-listen", "off")
		if got.Listen != "127.0.0.1:8451" || got.MaxFailures != 5 || got.MaxFailuresPerDay != 7 || got.MetricsListen != "off" {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("login-table", func(t *testing.T) {
		raw, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		edited := strings.NewReplacer("batch_size = 64", "batch_size = 16", `batch_window = "10ms"`, `batch_window = "0s"`,
			"point_cache = 65536", "point_cache = 0").Replace(string(raw))
		path := filepath.Join(filepath.Dir(cfg), "login-test.toml") // beside the example: its relative paths resolve
		if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(path) })
		if got := resolveServer(t, "--config", path); got.Login != (loginConfig{BatchSize: 16}) {
			t.Fatalf("[login] read as %+v", got.Login)
		}
	})
	t.Run("config-from-env", func(t *testing.T) {
		t.Setenv("POLYROOT_SERVER_CONFIG", cfg)
		if got := resolveServer(t); !reflect.DeepEqual(*got, want) {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("defaults-without-file", func(t *testing.T) {
		got := resolveServer(t, "--bundle", "b.json", "--registrar-key", "r.pem", "--data-dir", "d", "--keystore-dir", "k")
		if got.Listen != defaultServerListen || got.MetricsListen != defaultServerMetricsListen ||
			got.MaxFailures != defaultMaxFailures || got.MaxFailuresPerDay != defaultMaxFailuresPerDay || got.TokenTTL != duration(defaultTokenTTL) ||
			got.CodeTTL != duration(defaultCodeTTL) || got.Log.Format != "json" || got.Bundle != "b.json" {
			t.Fatalf("%+v", got)
		}
	})

	t.Run("example-shows-every-key", func(t *testing.T) {
		var zero bytes.Buffer
		if err := toml.NewEncoder(&zero).Encode(serverFileConfig{}); err != nil {
			t.Fatal(err)
		}
		var tree map[string]any
		if _, err := toml.Decode(zero.String(), &tree); err != nil {
			t.Fatal(err)
		}
		schema := map[string]any{}
		flatten("", tree, schema)
		raw, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "server.toml")
		uncommented := regexp.MustCompile(`(?m)^# ?([a-z_]+ = |\[)`).ReplaceAllString(string(raw), "$1")
		if err := os.WriteFile(path, []byte(uncommented), 0o600); err != nil {
			t.Fatal(err)
		}
		f := &configFile{path: path, kind: "server"}
		if err := f.load(); err != nil {
			t.Fatalf("server.toml with its commented settings enabled: %v", err)
		}
		shown := map[string]bool{}
		for _, k := range f.keys() {
			shown[k] = true
		}
		var missing []string
		for k := range schema {
			if !shown[k] {
				missing = append(missing, k)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Fatalf("server.toml does not show %v", missing)
		}
	})
}

func TestServerConfigErrors(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full := "bundle = \"b.json\"\nregistrar_key = \"r.pem\"\ndata_dir = \"d\"\n[keystore]\ndir = \"k\"\n"
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"fail/unknown-key", []string{"--config", write("unknown.toml", full+"index = 1\n")}, "unknown setting(s) keystore.index (see `polyroot server serve --help`)"},
		{"fail/dta-key-in-server-file", []string{"--config", write("dta.toml", "index = 1\n"+full)}, "unknown setting(s) index"},
		{"fail/no-data-dir", []string{"--bundle", "b", "--registrar-key", "r"}, "no data directory"},
		{"fail/max-failures", []string{"--config", write("ok.toml", full), "--max-failures", "0"}, "--max-failures 0: want 1 or more"},
		{"fail/max-failures-per-day", []string{"--config", write("okd.toml", full), "--max-failures-per-day", "0"}, "--max-failures-per-day 0: want 1 or more"},
		{"fail/login-batch-size", []string{"--config", write("okb.toml", full), "--login-batch-size", "0"}, "--login-batch-size 0: want 1 to 1024"},
		{"fail/login-batch-window", []string{"--config", write("okw.toml", full), "--login-batch-window", "5s"}, "--login-batch-window 5s: want 0s to 1s"},
		{"fail/login-point-cache", []string{"--config", write("okp.toml", full), "--login-point-cache", "-1"}, "--login-point-cache -1: want 0 or more"},
		{"fail/metrics-on-the-api-port", []string{"--config", write("okm.toml", full), "--listen", "0.0.0.0:8440", "--metrics-listen", "127.0.0.1:8440"},
			"share a port: the metrics need a listener of their own"},
		{"fail/metrics-listen", []string{"--config", write("okm2.toml", full), "--metrics-listen", "9440"}, "--metrics-listen \"9440\": want HOST:PORT or off"},
		{"fail/admin-listen", []string{"--config", write("oka.toml", full), "--admin-listen", "8444"}, "--admin-listen \"8444\": want HOST:PORT"},
		{"fail/admin-on-the-api-port", []string{"--config", write("oka2.toml", full), "--listen", "127.0.0.1:8440", "--admin-listen", "0.0.0.0:8440"},
			"--admin-listen 0.0.0.0:8440 and --listen 127.0.0.1:8440 share a port: the admin API needs a listener of its own"},
		{"fail/admin-on-the-metrics-port", []string{"--config", write("oka3.toml", full), "--metrics-listen", "127.0.0.1:9440", "--admin-listen", "127.0.0.1:9440"},
			"--admin-listen 127.0.0.1:9440 and --metrics-listen 127.0.0.1:9440 share a port"},
		{"fail/admin-beyond-loopback-without-tls", []string{"--config", write("oka4.toml", full), "--admin-listen", "10.0.0.1:8444"},
			"--admin-listen \"10.0.0.1:8444\" is not a loopback address and there is no TLS: the admin token would cross the network in the clear"},
		{"fail/token-ttl", []string{"--config", write("ok2.toml", full), "--token-ttl", "10ms"}, "at least 1s"},
		{"fail/log-format", []string{"--config", write("ok3.toml", full), "--log-format", "xml"}, "server serve: --log-format \"xml\""},
		{"fail/keystore-type", []string{"--config", write("ok4.toml", full), "--keystore", "hsm"}, "want file or vault"},
		{"fail/plain-http-beyond-loopback", []string{"--config", write("ok5.toml", full), "--listen", "0.0.0.0:8440"},
			"is not a loopback address and there is no TLS"},
		{"fail/plain-http-all-interfaces", []string{"--config", write("ok6.toml", full), "--listen", ":8440"},
			"is not a loopback address and there is no TLS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(append(append([]string{"server", "serve"}, tc.args...), "--check-config")...)
			if code != 1 || !strings.Contains(errOut, tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, errOut, tc.wantErr)
			}
		})
	}
	// Said explicitly, plain HTTP beyond loopback is allowed.
	for _, args := range [][]string{{"--config", write("ok7.toml", full), "--plain-http"}, {"--config", write("plain.toml", "plain_http = true\n"+full)}} {
		code, out, errOut := run(append(append([]string{"server", "serve", "--listen", "0.0.0.0:8440"}, args...), "--print-config")...)
		if code != 0 || !strings.Contains(out, "plain_http = true") {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}
