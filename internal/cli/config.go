package cli

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	ucli "github.com/urfave/cli/v3"
)

// The DTA's configuration file is TOML; its keys mirror the flags of `polyroot dta
// serve` (see fileConfig). A setting is taken from, in order: the command line, the
// environment variable named in its flag's help, the configuration file, the default.
// urfave/cli applies this order itself: every flag's Sources are its environment
// variable, then its key in the file (a configKey, read lazily once --config is
// known). Relative paths in the file are relative to the file's directory; relative
// paths given by flags or environment variables are relative to the working directory.

// fileConfig is the schema of the configuration file. Decoding into it checks the
// types; a key it does not have is an error.
type fileConfig struct {
	Listen             string         `toml:"listen"`
	MetricsListen      string         `toml:"metrics_listen"`
	Bundle             string         `toml:"bundle"`
	Index              uint32         `toml:"index"`
	DataDir            string         `toml:"data_dir"`
	CheckpointInterval duration       `toml:"checkpoint_interval"`
	ShutdownTimeout    duration       `toml:"shutdown_timeout"`
	Log                logConfig      `toml:"log"`
	Rate               rateConfig     `toml:"rate"`
	LogRate            rateConfig     `toml:"log_rate"` // the transparency log's routes
	TLS                tlsConfig      `toml:"tls"`
	Keystore           keystoreConfig `toml:"keystore"`
	Chain              chainConfig    `toml:"chain"`
}

// chainConfig is where a DTA anchors its log (package ledger, internal/dtacmd).
type chainConfig struct {
	Type          string   `toml:"type"`
	RPCURL        string   `toml:"rpc_url"`
	KeyFile       string   `toml:"key_file"`
	Contract      string   `toml:"contract"`
	AnchorPeriod  duration `toml:"anchor_period"`
	Confirmations uint64   `toml:"confirmations"`
}

// The tables that the DTA's and the auth server's files share.
type (
	logConfig struct {
		Format string `toml:"format"`
		Level  string `toml:"level"`
	}
	rateConfig struct {
		PerSecond float64 `toml:"per_second"`
		Burst     int     `toml:"burst"`
	}
	tlsConfig struct {
		Cert string `toml:"cert"`
		Key  string `toml:"key"`
	}
	keystoreConfig struct {
		Type  string `toml:"type"`
		Dir   string `toml:"dir"`
		Vault struct {
			Addr          string `toml:"addr"`
			Mount         string `toml:"mount"`
			Path          string `toml:"path"`
			AppRoleRoleID string `toml:"approle_role_id"`
			AppRoleMount  string `toml:"approle_mount"`
			CAFile        string `toml:"ca_file"`
			Namespace     string `toml:"namespace"`
		} `toml:"vault"`
	}
)

// duration is a time.Duration written as a Go duration string ("1s", "24h").
type duration time.Duration

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

func (d duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// pathKeys are the keys whose relative values are resolved against the file's directory.
var pathKeys = map[string]bool{
	"bundle": true, "data_dir": true, "tls.cert": true, "tls.key": true,
	"keystore.dir": true, "keystore.vault.ca_file": true, "chain.key_file": true,
	"registrar_key": true, "dta_ca_file": true, "web_dir": true, // the auth server's
}

// configFile is the --config file of one command invocation, loaded on first use.
type configFile struct {
	path string // the --config flag's Destination
	// kind says whose file it is: "" (a DTA's, schema fileConfig) or "server"
	// (serverFileConfig).
	kind string
	// typed is the decoded file (*fileConfig or *serverFileConfig), for the settings
	// that are no flag's (lists of tables).
	typed  any
	loaded bool
	err    error
	dir    string
	values map[string]any // dotted key → TOML scalar
}

// load reads and checks the file once; without --config it is empty.
func (c *configFile) load() error {
	if c.loaded {
		return c.err
	}
	c.loaded = true
	c.values = map[string]any{}
	if c.path == "" {
		return nil
	}
	c.err = c.read()
	return c.err
}

func (c *configFile) read() error {
	raw, err := os.ReadFile(c.path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var typed any = &fileConfig{}
	help := "polyroot dta serve --help"
	if c.kind == "server" {
		typed, help = &serverFileConfig{}, "polyroot server serve --help"
	}
	md, err := toml.NewDecoder(bytes.NewReader(raw)).Decode(typed)
	if err != nil {
		return tomlError(c.path, err)
	}
	if extra := md.Undecoded(); len(extra) > 0 {
		keys := make([]string, len(extra))
		for i, k := range extra {
			keys[i] = k.String()
		}
		return fmt.Errorf("config file %s: unknown setting(s) %s (see `%s`)", c.path, strings.Join(keys, ", "), help)
	}
	var tree map[string]any
	if _, err := toml.Decode(string(raw), &tree); err != nil {
		return tomlError(c.path, err)
	}
	abs, err := filepath.Abs(c.path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	c.dir = filepath.Dir(abs)
	c.typed = typed
	flatten("", tree, c.values)
	return nil
}

var (
	tomlWhere        = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): (.*)$`)
	tomlIncompatible = regexp.MustCompile(`^incompatible types: TOML value has type (.+); destination has type (.+)$`)
	tomlRange        = regexp.MustCompile(`^(.+) is out of range for \w+$`)
)

// tomlKinds name, in the words of TOML, the types the decoder names in Go's.
var tomlKinds = map[string]string{
	"int64": "a whole number", "integer": "a whole number", "uint32": "a whole number", "uint64": "a whole number",
	"float64": "a number", "float": "a number", "string": "a string (in quotes)", "bool": "true or false",
	"map[string]any": "a table", "[]any": "a list", "time.Time": "a date",
}

// tomlError words a decoding error of the config file at path: its line and key, and
// what the key takes, instead of the decoder's Go types ("TOML value has type int64;
// destination has type string") or a duration parser's "time: unknown unit".
func tomlError(path string, err error) error {
	m := tomlWhere.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	where, msg := path, m[3]
	if m[1] != "" {
		where += ", line " + m[1]
	}
	if m[2] != "" {
		where += ", key " + m[2]
	}
	kind := func(t string) string {
		if k, ok := tomlKinds[t]; ok {
			return k
		}
		return t
	}
	switch t := tomlIncompatible.FindStringSubmatch(msg); {
	case t != nil:
		msg = fmt.Sprintf("the value is %s; want %s", kind(t[1]), kind(t[2]))
	case tomlRange.MatchString(msg):
		msg = tomlRange.FindStringSubmatch(msg)[1] + " is out of range"
	case strings.HasPrefix(msg, "time: "):
		value := ""
		if i := strings.Index(msg, " in duration "); i >= 0 {
			value = " " + msg[i+len(" in duration "):]
		} else if i := strings.Index(msg, "invalid duration "); i >= 0 {
			value = " " + msg[i+len("invalid duration "):]
		}
		msg = "not a duration" + value + ": want a string such as \"500ms\", \"30s\", \"5m\" or \"24h\""
	}
	return fmt.Errorf("config file %s: %s", where, msg)
}

func flatten(prefix string, tree map[string]any, out map[string]any) {
	for k, v := range tree {
		if sub, ok := v.(map[string]any); ok {
			flatten(prefix+k+".", sub, out)
			continue
		}
		out[prefix+k] = v
	}
}

// lookup returns the file's value of key as flag text.
func (c *configFile) lookup(key string) (string, bool) {
	if c.load() != nil {
		return "", false // the error is reported by the command's action
	}
	v, ok := c.values[key]
	if !ok {
		return "", false
	}
	switch v := v.(type) {
	case string:
		if pathKeys[key] && v != "" && !filepath.IsAbs(v) {
			v = filepath.Join(c.dir, v)
		}
		return v, true
	case int64:
		return strconv.FormatInt(v, 10), true
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return fmt.Sprint(v), true // unreachable: fileConfig has scalar keys only
}

// keys lists the settings the file sets, sorted (for messages and tests).
func (c *configFile) keys() []string {
	var out []string
	for k := range c.values {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// configKey is a flag's value source in the configuration file.
type configKey struct {
	file *configFile
	key  string
}

func (k configKey) Lookup() (string, bool) { return k.file.lookup(k.key) }
func (k configKey) String() string {
	return fmt.Sprintf("key %q of config file %s", k.key, k.file.path)
}
func (k configKey) GoString() string { return "configKey{" + strconv.Quote(k.key) + "}" }

// envVar is a flag's value source in an environment variable; an empty variable counts
// as unset (so `FOO= polyroot …` does not blank out the file's setting).
type envVar string

func (e envVar) Lookup() (string, bool) {
	v := os.Getenv(string(e))
	return v, v != ""
}
func (e envVar) String() string   { return fmt.Sprintf("environment variable %q", string(e)) }
func (e envVar) GoString() string { return "envVar(" + strconv.Quote(string(e)) + ")" }
func (e envVar) IsFromEnv() bool  { return true }
func (e envVar) Key() string      { return string(e) }

// sources is the chain of a setting: its environment variable, then its key in the
// file (when the command reads one).
func sources(file *configFile, env, key string) ucli.ValueSourceChain {
	var chain []ucli.ValueSource
	if env != "" {
		chain = append(chain, envVar(env))
	}
	if file != nil && key != "" {
		chain = append(chain, configKey{file, key})
	}
	return ucli.NewValueSourceChain(chain...)
}

// metricsOff is the metrics_listen value that serves no metrics ("" does too).
const metricsOff = "off"

// metricsFlag is the --metrics-listen flag of a serve command.
func metricsFlag(file *configFile, env, value string) *ucli.StringFlag {
	str, _ := flagMakers(file)
	return str("metrics-listen", env, "metrics_listen", value, "Service",
		"serve the Prometheus metrics at GET /metrics on `HOST:PORT`, a separate plain-HTTP operations listener, "+
			"never on --listen; keep it on loopback or a monitoring network (port 0: any free port; off: no metrics)", false)
}

// checkMetricsListen checks a metrics_listen setting against listen; it returns the
// operations listener's address, "" for none.
func checkMetricsListen(cmd, listen, metrics string) (string, error) {
	if metrics == "" || metrics == metricsOff {
		return "", nil
	}
	_, port, err := net.SplitHostPort(metrics)
	if err != nil {
		return "", fmt.Errorf("%s: --metrics-listen %q: want HOST:PORT or off: %v", cmd, metrics, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("%s: --metrics-listen %q: the port is not a number from 0 to 65535", cmd, metrics)
	}
	if sharePort(listen, metrics) {
		return "", fmt.Errorf("%s: --metrics-listen %s and --listen %s share a port: the metrics need a listener of their own", cmd, metrics, listen)
	}
	return metrics, nil
}

// checkAdminListen checks --admin-listen: an address of its own, and TLS (or
// --plain-http) beyond loopback, since the admin token crosses it.
func checkAdminListen(s *serverFileConfig, metrics string) error {
	if s.AdminListen == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(s.AdminListen)
	if err != nil {
		return fmt.Errorf("server serve: --admin-listen %q: want HOST:PORT: %v", s.AdminListen, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("server serve: --admin-listen %q: the port is not a number from 0 to 65535", s.AdminListen)
	}
	for _, other := range []listenSetting{{"listen", s.Listen}, {"metrics-listen", metrics}} {
		if sharePort(other.addr, s.AdminListen) {
			return fmt.Errorf("server serve: --admin-listen %s and --%s %s share a port: the admin API needs a listener of its own", s.AdminListen, other.flag, other.addr)
		}
	}
	if s.TLS.Cert == "" && !isLoopback(host) && !s.PlainHTTP {
		return fmt.Errorf("server serve: --admin-listen %q is not a loopback address and there is no TLS: the admin token would "+
			"cross the network in the clear; give --tls-cert and --tls-key, listen on 127.0.0.1, or give --plain-http for a private network", s.AdminListen)
	}
	return nil
}

// sharePort reports whether listening on a and on b would take one port (neither on
// port 0, and one of them on every address or both on the same host).
func sharePort(a, b string) bool {
	ah, ap, errA := net.SplitHostPort(a)
	bh, bp, errB := net.SplitHostPort(b)
	any := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return errA == nil && errB == nil && ap == bp && ap != "0" && (ah == bh || any(ah) || any(bh))
}

// flagMakers returns constructors of string and duration flags whose value may also
// come from an environment variable and a key of file; the usage names the key.
func flagMakers(file *configFile) (
	str func(name, env, key, value, category, usage string, takesFile bool) *ucli.StringFlag,
	dur func(name, env, key string, value time.Duration, usage string) *ucli.DurationFlag,
) {
	str = func(name, env, key, value, category, usage string, takesFile bool) *ucli.StringFlag {
		return &ucli.StringFlag{Name: name, Value: value, Usage: usage + " (config: " + key + ")",
			Sources: sources(file, env, key), Category: category, TakesFile: takesFile}
	}
	dur = func(name, env, key string, value time.Duration, usage string) *ucli.DurationFlag {
		return &ucli.DurationFlag{Name: name, Value: value, Usage: usage + " (config: " + key + ")",
			Sources: sources(file, env, key), Category: "Service"}
	}
	return str, dur
}

// configFlag is the --config flag that fills file.path.
func configFlag(file *configFile) *ucli.StringFlag {
	return &ucli.StringFlag{
		Name:        "config",
		Aliases:     []string{"c"},
		Usage:       "read settings from this TOML `FILE` (flags and environment variables override it)",
		Sources:     ucli.NewValueSourceChain(envVar(configEnv(file))),
		Destination: &file.path,
		TakesFile:   true,
	}
}

// configEnv is the environment variable that names the --config file.
func configEnv(file *configFile) string {
	if file.kind == "server" {
		return "POLYROOT_SERVER_CONFIG"
	}
	return "POLYROOT_DTA_CONFIG"
}
