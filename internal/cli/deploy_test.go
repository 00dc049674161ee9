package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	ucli "github.com/urfave/cli/v3"
	yaml "go.yaml.in/yaml/v3"

	"github.com/polyroot/polyroot/internal/testbin"
)

// The deploy/ directory is read by operators, not compiled: these tests keep it in
// step with the command. Every config loads; every polyroot command line in the
// systemd units, the compose file and deploy/README.md names subcommands and flags
// that exist; the units and containers keep their hardening and can write where
// their configs put state.

func deployDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// invocation is one polyroot command line found in a deploy file.
type invocation struct {
	where string   // file:line, for messages
	args  []string // polyroot's arguments, without the program name
}

// checkArgs walks args down the command tree and returns the command they run and
// its --config value: every subcommand and every flag (name or alias) must exist,
// and the words must end at a command that runs (not a group such as `dta`).
func checkArgs(root *ucli.Command, args []string) (cmd *ucli.Command, config string, err error) {
	cmd = root
	chain := []*ucli.Command{root}
	name := "polyroot"
	positional := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if len(a) > 1 && a[0] == '-' {
			fname, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			f := lookupFlag(chain, fname)
			if f == nil {
				if fname == "help" || fname == "h" {
					continue
				}
				return nil, "", fmt.Errorf("`%s` has no flag %s (see `%s --help`)", name, a, name)
			}
			if tv, ok := f.(interface{ TakesValue() bool }); ok && tv.TakesValue() && !hasValue {
				if i+1 >= len(args) {
					return nil, "", fmt.Errorf("`%s`: flag %s needs a value", name, a)
				}
				i++
				value = args[i]
			}
			if slices.Contains(f.Names(), "config") {
				config = value
			}
			continue
		}
		if !positional {
			if sub := findCommand(cmd, a); sub != nil {
				cmd, chain, name = sub, append(chain, sub), name+" "+sub.Name
				continue
			}
			if len(cmd.Commands) > 0 { // a group: its action only shows help or names its commands
				return nil, "", fmt.Errorf("`%s` has no subcommand %q", name, a)
			}
		}
		positional = true
	}
	if len(cmd.Commands) > 0 {
		return nil, "", fmt.Errorf("`%s` is a group of commands, not a command", name)
	}
	return cmd, config, nil
}

func lookupFlag(chain []*ucli.Command, name string) ucli.Flag {
	for i := len(chain) - 1; i >= 0; i-- {
		for _, f := range chain[i].Flags {
			if slices.Contains(f.Names(), name) {
				return f
			}
		}
	}
	return nil
}

func findCommand(c *ucli.Command, name string) *ucli.Command {
	for _, sub := range c.Commands {
		if sub.Name == name || slices.Contains(sub.Aliases, name) {
			return sub
		}
	}
	return nil
}

// splitWords splits a command line into words the way systemd and a POSIX shell agree
// on for the simple lines deploy/ uses: blanks separate words, quotes group them.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// logicalLines reads a file and joins lines continued with a trailing backslash; each
// line carries the number of its first physical line.
func logicalLines(t *testing.T, file string) (lines []string, numbers []int) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var cur strings.Builder
	n, start := 0, 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		lines, numbers = append(lines, cur.String()), append(numbers, start)
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur.Len() > 0 {
		lines, numbers = append(lines, cur.String()), append(numbers, start)
	}
	return lines, numbers
}

// unit is a parsed systemd unit file: its directives (last value wins, repeated ones
// kept in order) and its polyroot command lines.
type unit struct {
	file       string
	directives map[string][]string
	commands   []invocation // ExecStart= and the like that run polyroot
	others     map[string]string
}

func parseUnit(t *testing.T, file string) *unit {
	t.Helper()
	u := &unit{file: file, directives: map[string][]string{}, others: map[string]string{}}
	lines, numbers := logicalLines(t, file)
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s:%d: not a directive: %q", file, numbers[i], line)
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		u.directives[key] = append(u.directives[key], value)
		if !strings.HasPrefix(key, "Exec") {
			continue
		}
		where := fmt.Sprintf("%s:%d", file, numbers[i])
		words, err := splitWords(strings.TrimLeft(value, "@-:+!|"))
		if err != nil || len(words) == 0 {
			t.Errorf("%s: %s=%q: %v", where, key, value, err)
			continue
		}
		if path.Base(words[0]) != "polyroot" {
			u.others[key] = value
			continue
		}
		u.commands = append(u.commands, invocation{where: where, args: words[1:]})
	}
	return u
}

func (u *unit) get(key string) string {
	v := u.directives[key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// composeFile is the part of compose.yaml the tests read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image           string            `yaml:"image"`
	Command         yaml.Node         `yaml:"command"`
	Entrypoint      yaml.Node         `yaml:"entrypoint"`
	User            string            `yaml:"user"`
	ReadOnly        bool              `yaml:"read_only"`
	CapDrop         []string          `yaml:"cap_drop"`
	SecurityOpt     []string          `yaml:"security_opt"`
	Privileged      bool              `yaml:"privileged"`
	Volumes         []string          `yaml:"volumes"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	Profiles        []string          `yaml:"profiles"`
	Ports           []string          `yaml:"ports"`
	EnvFile         []string          `yaml:"env_file"`
	Environment     map[string]string `yaml:"environment"`
	DependsOn       map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck struct {
		Test    yaml.Node `yaml:"test"`
		Disable bool      `yaml:"disable"`
	} `yaml:"healthcheck"`
}

// nodeWords returns a command node's words (a list, or a string split like a shell).
func nodeWords(n *yaml.Node) ([]string, error) {
	switch n.Kind {
	case 0:
		return nil, nil
	case yaml.ScalarNode:
		return splitWords(n.Value)
	case yaml.SequenceNode:
		var out []string
		if err := n.Decode(&out); err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, fmt.Errorf("line %d: want a string or a list", n.Line)
}

func loadCompose(t *testing.T) (string, *composeFile) {
	t.Helper()
	file := filepath.Join(deployDir(t), "compose", "compose.yaml")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(raw, &cf); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(cf.Services) == 0 {
		t.Fatalf("%s: no services", file)
	}
	return file, &cf
}

// dockerEntrypoint is the exec-form ENTRYPOINT of deploy/compose/Dockerfile.
func dockerEntrypoint(t *testing.T) []string {
	t.Helper()
	file := filepath.Join(deployDir(t), "compose", "Dockerfile")
	lines, numbers := logicalLines(t, file)
	var ep []string
	for i, line := range lines {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ENTRYPOINT "); ok {
			if err := json.Unmarshal([]byte(rest), &ep); err != nil {
				t.Fatalf("%s:%d: ENTRYPOINT is not in exec form (a JSON list): %v", file, numbers[i], err)
			}
		}
	}
	if len(ep) == 0 {
		t.Fatalf("%s: no ENTRYPOINT", file)
	}
	return ep
}

// checkConfig runs args (a serve command with --config host) with --print-config
// through Main and returns the resolved settings as TOML keys (the files they name
// are the target machine's: --check-config would look for them here).
func checkConfig(t *testing.T, where string, args []string, container, host string) map[string]any {
	t.Helper()
	args = slices.Clone(args)
	for i, a := range args {
		switch {
		case a == container:
			args[i] = host
		case strings.HasSuffix(a, "="+container):
			args[i] = strings.TrimSuffix(a, container) + host
		}
	}
	code, out, errOut := run(append(args, "--print-config")...)
	if code != 0 {
		t.Errorf("%s: polyroot %s --print-config: exit %d\n%s", where, strings.Join(args, " "), code, errOut)
		return nil
	}
	var got map[string]any
	if _, err := toml.Decode(out, &got); err != nil {
		t.Errorf("%s: --print-config printed invalid TOML: %v", where, err)
	}
	return got
}

// writablePaths checks that the state a config resolves to lies under one of dirs.
func writablePaths(t *testing.T, where string, resolved map[string]any, dirs []string) {
	t.Helper()
	paths := []string{}
	if d, ok := resolved["data_dir"].(string); ok {
		paths = append(paths, d)
	}
	if ks, ok := resolved["keystore"].(map[string]any); ok && ks["type"] == "file" {
		paths = append(paths, fmt.Sprint(ks["dir"]))
	}
	for _, p := range paths {
		ok := false
		for _, d := range dirs {
			ok = ok || p == d || strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/")
		}
		if !ok {
			t.Errorf("%s: the config puts state in %s, outside the writable %v", where, p, dirs)
		}
	}
}

// shutdownBelow checks that the service manager waits longer than the config's
// shutdown timeout before it kills the process.
func shutdownBelow(t *testing.T, where string, resolved map[string]any, stop string) {
	t.Helper()
	st, err1 := time.ParseDuration(fmt.Sprint(resolved["shutdown_timeout"]))
	limit, err2 := time.ParseDuration(stop)
	if err1 != nil || err2 != nil || limit <= st {
		t.Errorf("%s: the stop timeout %q must exceed the config's shutdown_timeout %v", where, stop, resolved["shutdown_timeout"])
	}
}

// TestDeployConfigsLoad: every config under deploy/ loads through the real command
// (a file named server*.toml is the auth server's, any other a DTA's).
func TestDeployConfigsLoad(t *testing.T) {
	clearEnv(t)
	files, err := filepath.Glob(filepath.Join(deployDir(t), "*", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"examples", "systemd", "compose"} {
		if !slices.ContainsFunc(files, func(f string) bool { return filepath.Base(filepath.Dir(f)) == want }) {
			t.Errorf("no config in deploy/%s", want)
		}
	}
	for _, f := range files {
		kind := "dta"
		if strings.HasPrefix(filepath.Base(f), "server") {
			kind = "server"
		}
		if code, _, errOut := run(kind, "serve", "--config", f, "--print-config"); code != 0 {
			t.Errorf("polyroot %s serve --config %s --print-config: exit %d\n%s", kind, f, code, errOut)
		}
	}
}

// hardening is what every unit must keep (directive → value).
var hardening = map[string]string{
	"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
	"PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
	"ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "ProtectClock": "yes",
	"ProtectHostname": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
	"RestrictNamespaces": "yes", "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes",
	"LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
	"CapabilityBoundingSet": "", "UMask": "0077", "KillSignal": "SIGTERM", "Restart": "on-failure",
}

// TestDeploySystemdUnits: the units run real commands with real flags, on configs
// that load, keep their hardening, write only their state directory, reload with
// SIGHUP only where the command handles it, and wait out the shutdown timeout.
func TestDeploySystemdUnits(t *testing.T) {
	clearEnv(t)
	dir := filepath.Join(deployDir(t), "systemd")
	units, _ := filepath.Glob(filepath.Join(dir, "*.service"))
	if len(units) < 2 {
		t.Fatalf("want the DTA and server units in %s, found %v", dir, units)
	}
	root := newApp(io.Discard, io.Discard)
	// A template's instances are the example configs that no plain unit reads.
	parsed := map[string]*unit{}
	named := map[string]bool{}
	for _, file := range units {
		u := parseUnit(t, file)
		parsed[file] = u
		for _, inv := range u.commands {
			if _, config, err := checkArgs(root, inv.args); err == nil && !strings.Contains(config, "%") {
				named[path.Base(config)] = true
			}
		}
	}
	var instanceNames []string
	configs, _ := filepath.Glob(filepath.Join(dir, "*.toml"))
	for _, c := range configs {
		if !named[filepath.Base(c)] {
			instanceNames = append(instanceNames, strings.TrimSuffix(filepath.Base(c), ".toml"))
		}
	}
	for _, file := range units {
		u := parsed[file]
		if len(u.commands) == 0 || len(u.directives["ExecStart"]) != 1 {
			t.Errorf("%s: want one ExecStart= that runs polyroot", file)
		}
		for k, want := range hardening {
			if got, ok := u.directives[k]; !ok || u.get(k) != want {
				t.Errorf("%s: %s=%q, want %q", file, k, got, want)
			}
		}
		if !slices.Contains(u.directives["SystemCallFilter"], "@system-service") {
			t.Errorf("%s: no SystemCallFilter=@system-service", file)
		}
		if u.get("User") == "" && u.get("DynamicUser") != "yes" {
			t.Errorf("%s: runs as root: set User= or DynamicUser=yes", file)
		}
		state := u.get("StateDirectory")
		if state == "" || u.get("ReadWritePaths") != "%S/"+state {
			t.Errorf("%s: ReadWritePaths=%q, want exactly the StateDirectory %%S/%s", file, u.get("ReadWritePaths"), state)
		}
		if !strings.HasPrefix(u.get("EnvironmentFile"), "/etc/polyroot/") {
			t.Errorf("%s: the secrets' EnvironmentFile= should be under /etc/polyroot", file)
		}
		if r, ok := u.others["ExecReload"]; ok && r != "/bin/kill -HUP $MAINPID" {
			t.Errorf("%s: ExecReload=%s, want /bin/kill -HUP $MAINPID", file, r)
		}
		for k := range u.others {
			if k != "ExecReload" {
				t.Errorf("%s: %s= does not run polyroot", file, k)
			}
		}
		for _, inv := range u.commands {
			cmd, config, err := checkArgs(root, inv.args)
			if err != nil {
				t.Errorf("%s: %v", inv.where, err)
				continue
			}
			_, reload := u.others["ExecReload"]
			if reload && !strings.Contains(cmd.Description, "SIGHUP") {
				t.Errorf("%s: ExecReload= sends SIGHUP, which `%s` does not handle", file, cmd.FullName())
			}
			if !strings.Contains(config, "/etc/polyroot/") {
				t.Errorf("%s: --config %q, want a file in /etc/polyroot", inv.where, config)
				continue
			}
			instances := []string{""}
			if strings.Contains(filepath.Base(file), "@.") {
				instances = instanceNames
				if len(instances) == 0 {
					t.Errorf("%s: no example config in %s for --config %s", inv.where, dir, config)
				}
			}
			for _, inst := range instances {
				expand := strings.NewReplacer("%i", inst, "%I", inst, "%S", "/var/lib").Replace
				host := filepath.Join(dir, path.Base(expand(config)))
				args := slices.Clone(inv.args)
				for i := range args {
					args[i] = expand(args[i])
				}
				resolved := checkConfig(t, inv.where, args, expand(config), host)
				if resolved == nil {
					continue
				}
				writablePaths(t, inv.where+" ("+filepath.Base(host)+")", resolved, []string{expand(u.get("ReadWritePaths"))})
				shutdownBelow(t, file, resolved, u.get("TimeoutStopSec"))
			}
		}
	}
}

// TestDeploySystemdVerify runs `systemd-analyze verify` on the units, with ExecStart=
// pointed at an executable that exists here. Any warning fails: verify exits 0 on
// unknown or malformed directives and only prints them.
func TestDeploySystemdVerify(t *testing.T) {
	// Debian's systemd package has it; under make test its absence is a failure.
	sa := testbin.Path(t, "POLYROOT_SYSTEMD_ANALYZE_BIN", "systemd-analyze")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	units, _ := filepath.Glob(filepath.Join(deployDir(t), "systemd", "*.service"))
	tmp := t.TempDir()
	var paths []string
	for _, file := range units {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		raw = []byte(strings.ReplaceAll(string(raw), "/usr/local/bin/polyroot", self))
		name := strings.Replace(filepath.Base(file), "@.", "@example.", 1) // verify wants an instance
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(sa, append([]string{"verify", "--man=no"}, paths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify (ExecStart= pointed at this test binary): %v\n%s", err,
			strings.ReplaceAll(string(out), tmp, filepath.Join(deployDir(t), "systemd")))
	}
	for _, p := range paths {
		out, err := exec.Command(sa, "security", "--offline=true", "--no-pager", p).CombinedOutput()
		if err != nil { // older systemd: no offline analysis
			t.Logf("systemd-analyze security --offline=true %s: %v", filepath.Base(p), err)
			continue
		}
		if m := regexp.MustCompile(`Overall exposure level for \S+: (.*)`).FindStringSubmatch(string(out)); m != nil {
			t.Logf("%s: exposure %s", filepath.Base(p), m[1])
		}
	}
}

// composePostgres checks the PostgreSQL service of compose.yaml (the official image):
// pinned to a version, its data in a named volume, not published on the host, run as
// its own user, its password from an env file under secrets/ (never in the file), and
// a healthcheck that a server can wait for.
func composePostgres(t *testing.T, at string, s composeService, writable []string) {
	t.Helper()
	if !regexp.MustCompile(`^postgres:\d+\.\d+(-[a-z0-9]+)?$`).MatchString(s.Image) {
		t.Errorf("%s: image %q: want the official image pinned to a version, postgres:MAJOR.MINOR[-VARIANT]", at, s.Image)
	}
	if s.User == "" {
		t.Errorf("%s: no user: the image would start as root", at)
	}
	if !slices.Contains(writable, "/var/lib/postgresql/data") {
		t.Errorf("%s: want a named volume on /var/lib/postgresql/data (PGDATA), got %v", at, s.Volumes)
	}
	if len(s.Ports) != 0 {
		t.Errorf("%s: ports %v: the database is for the compose network only", at, s.Ports)
	}
	for k := range s.Environment {
		if strings.Contains(k, "PASSWORD") && !strings.HasSuffix(k, "_FILE") {
			t.Errorf("%s: environment %s: the password belongs in an env file under secrets/ (not committed)", at, k)
		}
	}
	if len(s.EnvFile) == 0 || !slices.ContainsFunc(s.EnvFile, func(f string) bool { return strings.HasPrefix(f, "secrets/") }) {
		t.Errorf("%s: env_file %v: want the password in secrets/…", at, s.EnvFile)
	}
	test, err := nodeWords(&s.Healthcheck.Test)
	if err != nil || s.Healthcheck.Disable || len(test) < 2 || test[0] != "CMD" || test[1] != "pg_isready" || !slices.Contains(test, "127.0.0.1") {
		t.Errorf("%s: healthcheck %v: want [\"CMD\", \"pg_isready\", \"--host\", \"127.0.0.1\", …] (TCP: not healthy while the image initialises)", at, test)
	}
}

// TestDeployCompose: the containers run real commands with real flags on the mounted
// configs, which load; every service keeps its hardening; state goes to named volumes;
// the serve commands have a /readyz healthcheck that the image itself can run. The
// PostgreSQL service is checked by composePostgres, and an auth server on it migrates
// at start and waits for it to be healthy.
func TestDeployCompose(t *testing.T) {
	clearEnv(t)
	file, cf := loadCompose(t)
	dir := filepath.Dir(file)
	entry := dockerEntrypoint(t)
	root := newApp(io.Discard, io.Discard)
	binary := func(where, prog string) {
		if path.Base(prog) != "polyroot" || !path.IsAbs(prog) {
			t.Errorf("%s: %q is not the image's polyroot binary", where, prog)
		}
	}
	binary(filepath.Join(dir, "Dockerfile")+" ENTRYPOINT", entry[0])
	serves, postgres, onPostgres := 0, "", 0
	for name, s := range cf.Services {
		if strings.HasPrefix(s.Image, "postgres:") {
			postgres = name
		}
	}
	for name, s := range cf.Services {
		at := fmt.Sprintf("%s: service %s", file, name)
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || s.Privileged ||
			!slices.ContainsFunc(s.SecurityOpt, func(o string) bool { return strings.HasPrefix(o, "no-new-privileges") }) {
			t.Errorf("%s: want read_only: true, cap_drop: [ALL], security_opt: [no-new-privileges:true], not privileged", at)
		}
		if s.User == "root" || strings.HasPrefix(s.User, "0:") || s.User == "0" {
			t.Errorf("%s: runs as root", at)
		}
		// Mounts: host files read-only; named volumes are the writable state.
		mounts := map[string]string{} // container path → host file
		var writable []string
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Errorf("%s: volume %q: want SOURCE:TARGET[:ro]", at, v)
				continue
			}
			ro := len(parts) > 2 && slices.Contains(strings.Split(parts[2], ","), "ro")
			switch {
			case strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "/"):
				if !ro {
					t.Errorf("%s: bind mount %q must be read-only", at, v)
				}
				mounts[parts[1]] = filepath.Join(dir, parts[0])
			case cf.Volumes != nil && hasKey(cf.Volumes, parts[0]):
				if !ro {
					writable = append(writable, parts[1])
				}
			default:
				t.Errorf("%s: volume %q is neither a host path nor a named volume of the file", at, v)
			}
		}
		if name == postgres {
			composePostgres(t, at, s, writable)
			continue
		}
		if s.Image != "polyroot:local" {
			t.Errorf("%s: image %q: want polyroot:local (the Dockerfile's) or the postgres service", at, s.Image)
		}
		// The command, run by the image's entrypoint.
		args := entry[1:]
		if s.Entrypoint.Kind != 0 {
			ep, err := nodeWords(&s.Entrypoint)
			if err != nil || len(ep) == 0 {
				t.Errorf("%s: entrypoint: %v", at, err)
				continue
			}
			binary(at+" entrypoint", ep[0])
			args = ep[1:]
		}
		words, err := nodeWords(&s.Command)
		if err != nil {
			t.Errorf("%s: command: %v", at, err)
			continue
		}
		args = append(slices.Clone(args), words...)
		where := fmt.Sprintf("%s:%d (service %s)", file, s.Command.Line, name)
		cmd, config, err := checkArgs(root, args)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		if cmd.Name != "serve" {
			continue
		}
		serves++
		host, ok := mounts[config]
		if !ok {
			t.Errorf("%s: --config %q is not a file mounted into the container", where, config)
			continue
		}
		if resolved := checkConfig(t, where, args, config, host); resolved != nil {
			writablePaths(t, where, resolved, writable)
			shutdownBelow(t, at+" stop_grace_period", resolved, s.StopGracePeriod)
			if resolved["store"] == "postgres" {
				onPostgres++
				if resolved["migrate"] != true {
					t.Errorf("%s: store postgres without --migrate (or migrate = true): a new database has no schema", where)
				}
				if d, ok := s.DependsOn[postgres]; postgres == "" || !ok || d.Condition != "service_healthy" {
					t.Errorf("%s: store postgres: want depends_on the postgres service with condition service_healthy", at)
				}
			}
		}
		// The healthcheck: the image has no shell and no curl, only polyroot probe.
		test, err := nodeWords(&s.Healthcheck.Test)
		hwhere := fmt.Sprintf("%s:%d (service %s healthcheck)", file, s.Healthcheck.Test.Line, name)
		if err != nil || s.Healthcheck.Disable || len(test) < 3 || test[0] != "CMD" {
			t.Errorf("%s: want test: [\"CMD\", \"%s\", \"probe\", \"http://127.0.0.1:PORT/readyz\"] (the image has no shell)", hwhere, entry[0])
			continue
		}
		binary(hwhere, test[1])
		if pcmd, _, err := checkArgs(root, test[2:]); err != nil {
			t.Errorf("%s: %v", hwhere, err)
		} else if pcmd.Name != "probe" || !strings.HasSuffix(test[len(test)-1], "/readyz") {
			t.Errorf("%s: want polyroot probe …/readyz, got %v", hwhere, test[1:])
		}
	}
	if serves < 4 {
		t.Errorf("%s: %d serve services, want three DTAs and the auth server", file, serves)
	}
	if postgres == "" || onPostgres == 0 {
		t.Errorf("%s: want a postgres service and the auth server on it (store = \"postgres\")", file)
	}
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

// TestDeployReadme: the polyroot command lines in deploy/README.md's shell blocks,
// run directly or with `docker compose run … SERVICE`, name real commands and flags.
func TestDeployReadme(t *testing.T) {
	file := filepath.Join(deployDir(t), "README.md")
	lines, numbers := logicalLines(t, file)
	root := newApp(io.Discard, io.Discard)
	found := 0
	inBlock := false
	for i, line := range lines {
		if strings.HasPrefix(line, "```") {
			inBlock = !inBlock
			continue
		}
		if !inBlock {
			continue
		}
		line, _, _ = strings.Cut(line, " #") // a comment
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		words, err := splitWords(line)
		if err != nil {
			t.Errorf("%s:%d: %v", file, numbers[i], err)
			continue
		}
		for j := 0; j < len(words); j++ {
			start := -1
			switch {
			case path.Base(words[j]) == "polyroot":
				start = j + 1
			case j+2 < len(words) && words[j] == "docker" && words[j+1] == "compose" && words[j+2] == "run":
				k := j + 3
				for k < len(words) && strings.HasPrefix(words[k], "-") {
					k++
				}
				start = k + 1 // after the service
			}
			if start < 0 || start >= len(words) || findCommand(root, words[start]) == nil {
				continue // "polyroot" as a user or a path, or a service's default command
			}
			end := start
			for end < len(words) && !strings.ContainsAny(words[end][:1], "|;>&)<") {
				end++
			}
			found++
			if _, _, err := checkArgs(root, words[start:end]); err != nil {
				t.Errorf("%s:%d: %v", file, numbers[i], err)
			}
			j = end
		}
	}
	if found < 5 {
		t.Errorf("%s: found only %d polyroot command lines; is the parser still right?", file, found)
	}
}

// TestDeployCheckArgs: the command-line check itself finds what it must.
func TestDeployCheckArgs(t *testing.T) {
	root := newApp(io.Discard, io.Discard)
	for _, tc := range []struct {
		args    string
		wantErr string
	}{
		{"dta serve --config /etc/polyroot/dta-1.toml", ""},
		{"dta serve -c x.toml --check-config --listen=0.0.0.0:1", ""},
		{"server enroll --server https://a.example alice", ""},
		{"probe http://127.0.0.1:8441/readyz", ""},
		{"dta serve --conifg x.toml", "has no flag --conifg"},
		{"dta srve --config x.toml", `has no subcommand "srve"`},
		{"dta --config x.toml", "has no flag --config"},
		{"dta", "is a group of commands"},
		{"dta serve --config", "needs a value"},
		{"server serve --index 1", "has no flag --index"}, // a DTA's flag
	} {
		words, _ := splitWords(tc.args)
		_, _, err := checkArgs(root, words)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("checkArgs(%q) = %v, want %q", tc.args, err, tc.wantErr)
		}
	}
}
