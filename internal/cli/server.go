package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/dtacmd"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/internal/servercmd"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/server"
)

// Defaults of `polyroot server serve`.
const (
	defaultServerListen        = "127.0.0.1:8440"
	defaultServerMetricsListen = "127.0.0.1:9440" // the operations listener (GET /metrics)
	defaultMaxFailures         = 3
	defaultMaxFailuresPerDay   = 10
	defaultLoginBatchSize      = 64
	maxLoginBatchSize          = 1024
	defaultLoginBatchWindow    = 10 * time.Millisecond
	defaultLoginPointCache     = 1 << 16
	defaultTokenTTL            = 15 * time.Minute
	defaultCodeTTL             = 24 * time.Hour
)

// The admin token of the registrar API comes from the environment only.
const envAdminToken = "POLYROOT_ADMIN_TOKEN"

// The bearer credential of token introspection (POST /v1/token/introspect), for the
// app backends' resource servers, comes from the environment only; unset, the
// endpoint is off.
const envIntrospectionToken = "POLYROOT_SERVER_INTROSPECTION_TOKEN"

// serverFileConfig is the schema of the auth server's configuration file; its keys
// mirror the flags of `polyroot server serve`.
type serverFileConfig struct {
	Listen            string         `toml:"listen"`
	PlainHTTP         bool           `toml:"plain_http"`
	MetricsListen     string         `toml:"metrics_listen"`
	AdminListen       string         `toml:"admin_listen"`
	Bundle            string         `toml:"bundle"`
	RegistrarKey      string         `toml:"registrar_key"`
	DataDir           string         `toml:"data_dir"`
	Store             string         `toml:"store"`
	DatabaseURL       string         `toml:"database_url"` // without a password (databaseURL)
	Migrate           bool           `toml:"migrate"`
	DTACAFile         string         `toml:"dta_ca_file"`
	MaxFailures       int            `toml:"max_failures"`
	MaxFailuresPerDay int            `toml:"max_failures_per_day"`
	TokenTTL          duration       `toml:"token_ttl"`
	CodeTTL           duration       `toml:"code_ttl"`
	Login             loginConfig    `toml:"login"`
	ShutdownTimeout   duration       `toml:"shutdown_timeout"`
	Log               logConfig      `toml:"log"`
	Rate              rateConfig     `toml:"rate"`
	TLS               tlsConfig      `toml:"tls"`
	Keystore          keystoreConfig `toml:"keystore"`
	WebDir            string         `toml:"web_dir"`
	OIDC              oidcFileConfig `toml:"oidc"`
}

// loginConfig is the [login] table: how the server checks logins under load.
type loginConfig struct {
	BatchSize   int      `toml:"batch_size"`
	BatchWindow duration `toml:"batch_window"`
	PointCache  int      `toml:"point_cache"`
	// RefuseUnbound refuses logins without channel binding (server.Config.RefuseUnboundLogins).
	RefuseUnbound bool `toml:"refuse_unbound"`
}

func serverCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "server",
		Usage: "run a domain's auth server: provision its key, serve logins, enrol and revoke identities",
		Description: "The auth server is the domain's registrar (it enrols, revokes and unblocks\n" +
			"identities through an admin API) and the verifier of the mutual PIN login; it hands\n" +
			"out short-lived access tokens that app backends check (server/middleware).\n\n" +
			"Example, the set-up of a server (deploy/examples/README.md has the whole walk-through):\n" +
			"   export " + envPassphrase + "='…' " + envAdminToken + "='…'\n" +
			"   polyroot server provision --config /etc/polyroot/server.toml\n" +
			"   polyroot server serve --config /etc/polyroot/server.toml\n" +
			"   polyroot server enrol --server https://auth.example.com alice@example.com",
		Commands: []*ucli.Command{
			serverProvisionCommand(), serverServeCommand(), serverMigrateCommand(),
			serverEnrolCommand(), serverEnrolmentsCommand(), serverRevokeCommand(), serverUnblockCommand(),
			serverOIDCClientCommand(),
		},
	}
}

// serverFlags are the settings of provision (serve false) and serve (serve true).
func serverFlags(file *configFile, serve bool) []ucli.Flag {
	str, dur := flagMakers(file)
	flags := []ucli.Flag{
		configFlag(file),
		str("bundle", "POLYROOT_SERVER_BUNDLE", "bundle", "", "Service", "the domain's signed trust bundle `FILE`", true),
		str("registrar-key", "POLYROOT_SERVER_REGISTRAR_KEY", "registrar_key", "", "Service",
			"the registrar's private key `FILE` (polyroot registrar keygen; mode 0600); serve reads it from the keystore, where provision stored it, when this is not set", true),
		str("dta-ca-file", "POLYROOT_SERVER_DTA_CA_FILE", "dta_ca_file", "", "Service",
			"PEM `FILE` of a CA to trust, besides the system's, for HTTPS to the DTAs", true),
	}
	if serve {
		flags = append(flags,
			str("listen", "POLYROOT_SERVER_LISTEN", "listen", defaultServerListen, "Service", "listen on `HOST:PORT` (port 0: any free port)", false),
			&ucli.BoolFlag{Name: "plain-http", Category: "Service",
				Usage: "serve plain HTTP on an address that is not loopback, without [tls]: logins there have no channel binding " +
					"and the admin token crosses the network in the clear; only for a private network, e.g. a container whose " +
					"port is published on the host's loopback (config: plain_http)",
				Sources: sources(file, "POLYROOT_SERVER_PLAIN_HTTP", "plain_http")},
			metricsFlag(file, "POLYROOT_SERVER_METRICS_LISTEN", defaultServerMetricsListen),
			str("admin-listen", "POLYROOT_SERVER_ADMIN_LISTEN", "admin_listen", "", "Service",
				"serve the admin API (/v1/admin/…) on `HOST:PORT` alone, with the TLS of --listen, and not on --listen: "+
					"keep it on loopback or a management network (unset: on --listen)", false),
			str("data-dir", "POLYROOT_SERVER_DATA_DIR", "data_dir", "", "Service", "`DIR` for the state database (server.db)", true),
			&ucli.IntFlag{Name: "max-failures", Value: defaultMaxFailures, Category: "Service",
				Usage:   "consecutive failed logins after which an identity is blocked until the registrar unblocks it (config: max_failures)",
				Sources: sources(file, "POLYROOT_SERVER_MAX_FAILURES", "max_failures")},
			&ucli.IntFlag{Name: "max-failures-per-day", Value: defaultMaxFailuresPerDay, Category: "Service",
				Usage: "the daily failure budget: failed logins within 24 h, successes in between or not, after which an identity " +
					"is blocked until the registrar unblocks it; each such block is logged (WARN) and counted in " +
					"polyroot_server_failure_budget_exceeded_total (config: max_failures_per_day)",
				Sources: sources(file, "POLYROOT_SERVER_MAX_FAILURES_PER_DAY", "max_failures_per_day")},
			dur("token-ttl", "POLYROOT_SERVER_TOKEN_TTL", "token_ttl", defaultTokenTTL, "lifetime of the access tokens"),
			dur("code-ttl", "POLYROOT_SERVER_CODE_TTL", "code_ttl", defaultCodeTTL, "lifetime of the one-time enrolment codes"),
			&ucli.IntFlag{Name: "login-batch-size", Value: defaultLoginBatchSize, Category: "Service",
				Usage: "most pass-2 messages checked together while the server is loaded; 1 checks each alone " +
					"(config: login.batch_size)",
				Sources: sources(file, "POLYROOT_SERVER_LOGIN_BATCH_SIZE", "login.batch_size")},
			dur("login-batch-window", "POLYROOT_SERVER_LOGIN_BATCH_WINDOW", "login.batch_window", defaultLoginBatchWindow,
				"while the server is loaded, how long a batch waits for more pass-2 messages (the most a login waits for batching)"),
			&ucli.IntFlag{Name: "login-point-cache", Value: defaultLoginPointCache, Category: "Service",
				Usage: "login points (hashes of identities to the curve, by permit slot) kept in memory, about 190 bytes each; 0: none " +
					"(config: login.point_cache)",
				Sources: sources(file, "POLYROOT_SERVER_LOGIN_POINT_CACHE", "login.point_cache")},
			&ucli.BoolFlag{Name: "refuse-unbound-logins", Category: "Service",
				Usage: "accept only logins bound to their TLS channel: for a domain whose clients are all native; " +
					"the login pages and the OpenID Provider, which log in from a browser, cannot (config: login.refuse_unbound)",
				Sources: sources(file, "POLYROOT_SERVER_REFUSE_UNBOUND_LOGINS", "login.refuse_unbound")},
		)
		flags = append(flags, serverStoreFlags(file)...)
		flags = append(flags, webFlags(file)...)
		flags = append(flags, configCheckFlags("server provision")...)
		flags = append(flags, serviceFlags(file, "POLYROOT_SERVER")...)
	} else {
		flags = append(flags, &ucli.BoolFlag{Name: "force", Usage: "replace a server key that the keystore already holds"})
	}
	return append(flags, keystoreFlags(file)...)
}

const serverSettingsHelp = "Settings, highest precedence first: command-line flags, then environment variables\n" +
	"(named in [$…] below), then the TOML config file (its key after \"config:\"; a dotted\n" +
	"key is a table: tls.cert is `cert` under `[tls]`), then the defaults. Relative paths\n" +
	"in the config file are relative to the file's directory. An unknown key in the file\n" +
	"is an error. deploy/examples/server.toml shows every key.\n\n"

func serverProvisionCommand() *ucli.Command {
	file := &configFile{kind: "server"}
	return &ucli.Command{
		Name:  "provision",
		Usage: "fetch the server key shares from every DTA, check and combine them, store sQ in the keystore",
		UsageText: "polyroot server provision --config FILE [--force] [flags]\n\n" +
			"Examples:\n" +
			"   export " + envPassphrase + "='…'\n" +
			"   polyroot server provision --config deploy/examples/server.toml\n" +
			"   polyroot server provision --config server.toml --force   # after a DTA rotated its master share",
		Description: "Asks every DTA of the trust bundle for its share s_i·Q of the server key with a\n" +
			"ticket signed by the registrar key, checks each share against the DTA's commitment\n" +
			"in the bundle (e(C_i, Q) = e(P1, s_i·Q)), combines them into sQ and stores it in the\n" +
			"keystore as \"" + server.SecretServerKey + "\", and the registrar key beside it as \"" + servercmd.SecretRegistrarKey + "\":\n" +
			"serve reads it from there when registrar_key is not set, so the key file can be kept\n" +
			"offline. A DTA that cannot be reached or answers a bad share is named, and nothing is\n" +
			"stored. An existing server key is replaced only with --force.\n" +
			"It reads the same config file as `server serve` (bundle, registrar_key, dta_ca_file,\n" +
			"[keystore]).\n\n" + serverSettingsHelp +
			"Secrets never come from flags or the config file: " + envPassphrase + " (file\n" +
			"keystore), " + envVaultToken + " or " + envVaultSecretID + " (vault keystore); each\n" +
			"may instead be in a file named by NAME_FILE (mode 0600 or 0400).",
		Flags: serverFlags(file, false),
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := file.load(); err != nil {
				return err
			}
			bundleFile, keyFile := c.String("bundle"), c.String("registrar-key")
			switch {
			case bundleFile == "":
				return errors.New("server provision: no trust bundle: give --bundle, $POLYROOT_SERVER_BUNDLE or bundle in the config file")
			case keyFile == "":
				return errors.New("server provision: no registrar key: give --registrar-key, $POLYROOT_SERVER_REGISTRAR_KEY or registrar_key in the config file")
			}
			b, fp, err := dtacmd.ReadBundle(bundleFile)
			if err != nil {
				return fmt.Errorf("server provision: %w", err)
			}
			priv, err := readRegistrarKey(keyFile)
			if err != nil {
				return fmt.Errorf("server provision: %w", err)
			}
			dtaHTTP, err := httpClient(c.String("dta-ca-file"), 0)
			if err != nil {
				return fmt.Errorf("server provision: --dta-ca-file: %w", err)
			}
			ks, desc, err := openKeystore(ctx, c, c.Root().ErrWriter)
			if err != nil {
				return fmt.Errorf("server provision: %w", err)
			}
			switch _, err := ks.Get(ctx, server.SecretServerKey); {
			case err == nil && !c.Bool("force"):
				return fmt.Errorf("server provision: %s already holds the server key %q; refusing to overwrite it "+
					"(give --force to replace it, e.g. after a DTA rotated its master share)", desc, server.SecretServerKey)
			case err != nil && !errors.Is(err, keystore.ErrNotFound):
				return fmt.Errorf("server provision: %w", err)
			}
			sQ, rep, err := server.ProvisionReport(ctx, b, priv, dtaHTTP)
			if err != nil {
				var de *server.DTAError
				if errors.As(err, &de) {
					return fmt.Errorf("server provision: nothing stored: %s; check that these DTAs run and serve the bundle %s", describeDTAError(de, b), fp)
				}
				return fmt.Errorf("server provision: %w", err)
			}
			if err := ks.Put(ctx, server.SecretServerKey, sQ.Bytes()); err != nil {
				return fmt.Errorf("server provision: storing the server key: %w", err)
			}
			// The registrar key too, so that serve needs no key file in the clear.
			if err := ks.Put(ctx, servercmd.SecretRegistrarKey, priv.Seed()); err != nil {
				return fmt.Errorf("server provision: storing the registrar key: %w", err)
			}
			if len(rep.Failed) > 0 {
				fmt.Fprintf(c.Root().ErrWriter, "polyroot: warning: %s (the other DTAs sufficed)\n",
					describeDTAError(&server.DTAError{Failed: rep.Failed}, b))
			}
			used := make([]string, len(rep.Used))
			for i, x := range slices.Sorted(slices.Values(rep.Used)) {
				used[i] = fmt.Sprint(x)
			}
			logged := make([]string, len(rep.Used))
			for i, x := range slices.Sorted(slices.Values(rep.Used)) {
				logged[i] = fmt.Sprintf("DTA %d entry %d", x, rep.Logged[x])
			}
			_, err = fmt.Fprintf(c.Root().Writer, "polyroot: server key of %s provisioned from DTA %s and stored as %q in %s\n"+
				"polyroot: the DTAs logged these issuances at %s: `polyroot audit` lists them among the server shares; "+
				"any other is an alarm, unless it is from this run's DTAs not used (a threshold domain's others also issue and log one)\n"+
				"polyroot: the registrar key is stored as %q too: leave registrar_key out of serve's settings and keep %s offline\n",
				b.Domain, strings.Join(used, ", "), server.SecretServerKey, desc, strings.Join(logged, ", "), servercmd.SecretRegistrarKey, keyFile)
			return err
		},
	}
}

// describeDTAError names each failed DTA with its URL.
func describeDTAError(de *server.DTAError, b *bundle.Bundle) string {
	var parts []string
	for _, d := range b.DTAs {
		if err, ok := de.Failed[d.Index]; ok {
			if reason, remedy, tlsErr := tlsProblem(err, "--dta-ca-file"); tlsErr {
				parts = append(parts, fmt.Sprintf("DTA %d (%s) is not trusted: %s; %s", d.Index, d.URL, reason, remedy))
				continue
			}
			parts = append(parts, fmt.Sprintf("DTA %d (%s): %v", d.Index, d.URL, err))
		}
	}
	return strings.Join(parts, "; ")
}

func serverServeCommand() *ucli.Command {
	file := &configFile{kind: "server"}
	return &ucli.Command{
		Name:  "serve",
		Usage: "serve the auth server's HTTP API until SIGINT or SIGTERM",
		UsageText: "polyroot server serve --config FILE [flags]\n\n" +
			"Examples:\n" +
			"   export " + envPassphrase + "='…' " + envAdminToken + "=\"$(openssl rand -hex 24)\"\n" +
			"   polyroot server serve --config deploy/examples/server.toml\n" +
			"   polyroot server serve --config server.toml --listen 0.0.0.0:8440 --tls-cert tls.crt --tls-key tls.key\n" +
			"   POLYROOT_SERVER_LISTEN=127.0.0.1:8450 polyroot server serve --config server.toml --check-config",
		Description: "Serves the registrar admin API (/v1/admin/…, needs the admin token), enrolment\n" +
			"(/v1/enrol), the mutual login (/v1/login/…), permits (/v1/permits), the trust bundle\n" +
			"(/v1/bundle), the token keys (/.well-known/jwks.json), /livez and /readyz on --listen,\n" +
			"and its Prometheus metrics (GET /metrics) on a separate operations listener,\n" +
			"--metrics-listen (default " + defaultServerMetricsListen + "): per-request timings are for operators only.\n" +
			"With --admin-listen, the admin API is served there alone (with the TLS of --listen)\n" +
			"and --listen answers 404 on it: a firewall or the loopback interface then keeps it\n" +
			"from the network the logins come from; point the admin commands' --server at it.\n" +
			"It prints one line to stdout when it accepts connections:\n" +
			"   polyroot: auth server of <domain> ready at <URL> (bundle <fingerprint>[; admin API at <URL>]; metrics at <URL>)\n" +
			"Logs go to stderr (log/slog, JSON or text).\n\n" +
			"It needs the server key from `polyroot server provision` in the keystore; the key\n" +
			"that signs access tokens is kept there too, as \"" + servercmd.SecretTokenKey + "\", and created on first start.\n" +
			"Serve HTTPS (--tls-cert, --tls-key) terminated by this process: logins bind to the\n" +
			"TLS channel, so a TLS-terminating proxy in front makes them fail. Plain HTTP is for\n" +
			"loopback tests only.\n\n" + serverSettingsHelp +
			"Secrets never come from flags or the config file: " + envAdminToken + " (the registrar admin\n" +
			"API's bearer token, at least 16 characters), " + envIntrospectionToken + "\n" +
			"(optional: the bearer token app backends send to POST /v1/token/introspect, at least\n" +
			"16 characters, not the admin token; unset, that endpoint is off), " + envPassphrase + "\n" +
			"(file keystore), " + envVaultToken + " or " + envVaultSecretID + " (vault keystore); each\n" +
			"may instead be in a file named by NAME_FILE (mode 0600 or 0400, e.g. a systemd\n" +
			"credential: " + envAdminToken + "_FILE=%d/admin-token).\n\n" +
			"Signals: SIGHUP re-reads the TLS certificate and the trust bundle file: a successor\n" +
			"bundle (bundle assemble --successor-of, after a resharing) replaces the one in use;\n" +
			"any other bundle is refused, and a failed reload keeps everything in use.\n" +
			"SIGINT and SIGTERM stop accepting connections, let the requests in flight finish\n" +
			"(--shutdown-timeout), then close the state database.",
		Flags:  serverFlags(file, true),
		Action: serverServeAction(file),
	}
}

// serverServeSettings resolves and checks the settings of server serve.
func serverServeSettings(c *ucli.Command) (*serverFileConfig, error) {
	var s serverFileConfig
	s.Listen, s.Bundle, s.RegistrarKey, s.DataDir = c.String("listen"), c.String("bundle"), c.String("registrar-key"), c.String("data-dir")
	s.DTACAFile, s.MaxFailures, s.MaxFailuresPerDay = c.String("dta-ca-file"), c.Int("max-failures"), c.Int("max-failures-per-day")
	s.MetricsListen, s.AdminListen, s.PlainHTTP = c.String("metrics-listen"), c.String("admin-listen"), c.Bool("plain-http")
	s.Store, s.Migrate = c.String("store"), c.Bool("migrate")
	s.TokenTTL, s.CodeTTL, s.ShutdownTimeout = duration(c.Duration("token-ttl")), duration(c.Duration("code-ttl")), duration(c.Duration("shutdown-timeout"))
	s.Login = loginConfig{BatchSize: c.Int("login-batch-size"), BatchWindow: duration(c.Duration("login-batch-window")), PointCache: c.Int("login-point-cache"),
		RefuseUnbound: c.Bool("refuse-unbound-logins")}
	s.Log.Format, s.Log.Level = c.String("log-format"), c.String("log-level")
	s.Rate.PerSecond, s.Rate.Burst = c.Float("rate-limit"), c.Int("rate-burst")
	s.TLS.Cert, s.TLS.Key = c.String("tls-cert"), c.String("tls-key")
	k := &s.Keystore
	k.Type, k.Dir = c.String("keystore"), c.String("keystore-dir")
	v := &k.Vault
	v.Addr, v.Mount, v.Path = c.String("vault-addr"), c.String("vault-mount"), c.String("vault-path")
	v.AppRoleRoleID, v.AppRoleMount = c.String("vault-approle-role-id"), c.String("vault-approle-mount")
	v.CAFile, v.Namespace = c.String("vault-ca-file"), c.String("vault-namespace")

	missing := func(what, flag, env, key string) error {
		return fmt.Errorf("server serve: no %s: give --%s, $%s or %s in the config file", what, flag, env, key)
	}
	switch {
	case s.Listen == "":
		return nil, missing("listen address", "listen", "POLYROOT_SERVER_LISTEN", "listen")
	case s.Bundle == "":
		return nil, missing("trust bundle", "bundle", "POLYROOT_SERVER_BUNDLE", "bundle")
	case s.DataDir == "":
		return nil, missing("data directory", "data-dir", "POLYROOT_SERVER_DATA_DIR", "data_dir")
	case s.Store != storeBolt && s.Store != storePostgres:
		return nil, fmt.Errorf("server serve: --store %q: want %s or %s", s.Store, storeBolt, storePostgres)
	case s.MaxFailures < 1:
		return nil, fmt.Errorf("server serve: --max-failures %d: want 1 or more", s.MaxFailures)
	case s.MaxFailuresPerDay < 1:
		return nil, fmt.Errorf("server serve: --max-failures-per-day %d: want 1 or more", s.MaxFailuresPerDay)
	case s.Login.BatchSize < 1 || s.Login.BatchSize > maxLoginBatchSize:
		return nil, fmt.Errorf("server serve: --login-batch-size %d: want 1 to %d", s.Login.BatchSize, maxLoginBatchSize)
	case s.Login.BatchWindow < 0 || s.Login.BatchWindow > duration(time.Second):
		return nil, fmt.Errorf("server serve: --login-batch-window %v: want 0s to 1s", time.Duration(s.Login.BatchWindow))
	case s.Login.PointCache < 0:
		return nil, fmt.Errorf("server serve: --login-point-cache %d: want 0 or more", s.Login.PointCache)
	case s.TokenTTL < duration(time.Second) || s.CodeTTL < duration(time.Second):
		return nil, fmt.Errorf("server serve: the token and code lifetimes must be at least 1s")
	case s.Rate.PerSecond <= 0 || s.Rate.Burst < 1:
		return nil, fmt.Errorf("server serve: rate limit %g/s with burst %d: both must be positive", s.Rate.PerSecond, s.Rate.Burst)
	case s.ShutdownTimeout <= 0:
		return nil, fmt.Errorf("server serve: the shutdown timeout must be positive")
	case (s.TLS.Cert == "") != (s.TLS.Key == ""):
		return nil, fmt.Errorf("server serve: TLS needs both --tls-cert and --tls-key")
	case k.Type != "file" && k.Type != "vault":
		return nil, fmt.Errorf("server serve: --keystore %q: want file or vault", k.Type)
	case k.Type == "file" && k.Dir == "":
		return nil, missing("keystore directory", "keystore-dir", "POLYROOT_KEYSTORE_DIR", "keystore.dir")
	case k.Type == "vault" && v.Addr == "":
		return nil, missing("Vault address", "vault-addr", "POLYROOT_VAULT_ADDR", "keystore.vault.addr")
	}
	metrics, err := checkMetricsListen("server serve", s.Listen, s.MetricsListen)
	if err != nil {
		return nil, err
	}
	if err := checkAdminListen(&s, metrics); err != nil {
		return nil, err
	}
	if host, _, _ := net.SplitHostPort(s.Listen); s.TLS.Cert == "" && !isLoopback(host) && !s.PlainHTTP {
		return nil, fmt.Errorf("server serve: --listen %q is not a loopback address and there is no TLS: logins there would have "+
			"no channel binding and the admin token would cross the network in the clear; give --tls-cert and --tls-key "+
			"([tls] in the config file), listen on 127.0.0.1, or give --plain-http (plain_http = true) for a private network", s.Listen)
	}
	if _, err := newLogger(s.Log.Format, s.Log.Level, io.Discard); err != nil {
		return nil, fmt.Errorf("server serve: %w", err)
	}
	return &s, nil
}

func serverServeAction(file *configFile) ucli.ActionFunc {
	return func(ctx context.Context, c *ucli.Command) error {
		defer holdSIGHUP()()
		s, done, err := resolveServe(c, file, func(c *ucli.Command) (*serverFileConfig, error) {
			s, err := serverServeSettings(c)
			if err == nil {
				s.OIDC = oidcFileSettings(c, file)
			}
			return s, err
		})
		if err != nil {
			return err
		}
		metrics, _ := checkMetricsListen("server serve", s.Listen, s.MetricsListen) // checked by serverServeSettings
		if done {
			if c.Bool("check-config") {
				return checkServerConfig(ctx, c, s).report(c.Root().ErrWriter, "server serve")
			}
			return nil
		}
		admin, err := secretEnv(envAdminToken)
		if err != nil {
			return fmt.Errorf("server serve: %w", err)
		}
		if len(admin) < 16 {
			return fmt.Errorf("server serve: the admin token must be in the environment variable %s, at least 16 characters "+
				"(e.g. %s=\"$(openssl rand -hex 24)\"); it is never read from a flag or the config file", envAdminToken, envAdminToken)
		}
		introspection, err := secretEnv(envIntrospectionToken)
		if err != nil {
			return fmt.Errorf("server serve: %w", err)
		}
		if introspection != "" && (len(introspection) < 16 || introspection == admin) {
			return fmt.Errorf("server serve: %s must be at least 16 characters and not the admin token "+
				"(e.g. %s=\"$(openssl rand -hex 24)\"), or unset to turn token introspection off", envIntrospectionToken, envIntrospectionToken)
		}
		var priv ed25519.PrivateKey // none: servercmd.Serve reads the keystore's
		if s.RegistrarKey != "" {
			if priv, err = readRegistrarKey(s.RegistrarKey); err != nil {
				return fmt.Errorf("server serve: %w", err)
			}
		}
		var dbURL string
		if s.Store == storePostgres {
			if dbURL, err = databaseURL(file); err != nil {
				return fmt.Errorf("server serve: %w", err)
			}
		}
		dtaHTTP, err := httpClient(s.DTACAFile, 15*time.Second)
		if err != nil {
			return fmt.Errorf("server serve: --dta-ca-file: %w", err)
		}
		// Before the keystore's passphrase goes through scrypt, in the words dta serve uses.
		if err := busyError(s.DataDir, serverStateDB, listenSetting{"listen", s.Listen}, listenSetting{"metrics-listen", metrics},
			listenSetting{"admin-listen", s.AdminListen}); err != nil {
			return fmt.Errorf("server serve: %w", err)
		}
		logger, _ := newLogger(s.Log.Format, s.Log.Level, c.Root().ErrWriter) // checked by serverServeSettings
		ks, desc, err := openKeystore(ctx, c, c.Root().ErrWriter)
		if err != nil {
			return fmt.Errorf("server serve: %w", err)
		}
		oidc, err := oidcSettings(s.OIDC)
		if err != nil {
			return fmt.Errorf("server serve: %w", err)
		}
		if oidc.Issuer != "" {
			// zitadel/oidc logs through slog.Default alone: its lines then take the
			// --log-format and --log-level of the rest.
			slog.SetDefault(logger.With("component", "oidc"))
		}
		logger.Info("starting auth server", "keystore", desc, "data_dir", s.DataDir, "store", s.Store, "bundle", s.Bundle, "config", file.path)
		err = servercmd.Serve(ctx, servercmd.Config{
			Listen: s.Listen, MetricsListen: metrics, AdminListen: s.AdminListen, BundleFile: s.Bundle, RegistrarKey: priv, Keys: ks, AdminToken: admin,
			IntrospectionToken: introspection, DataDir: s.DataDir, Store: s.Store, DatabaseURL: dbURL, Migrate: s.Migrate, Logger: logger, DTAClient: dtaHTTP,
			RatePerSecond: s.Rate.PerSecond, RateBurst: s.Rate.Burst,
			MaxFailures: s.MaxFailures, MaxFailuresPerDay: s.MaxFailuresPerDay, TokenTTL: time.Duration(s.TokenTTL), CodeTTL: time.Duration(s.CodeTTL),
			TLSCert: s.TLS.Cert, TLSKey: s.TLS.Key, ShutdownTimeout: time.Duration(s.ShutdownTimeout),
			LoginBatchSize: s.Login.BatchSize, LoginBatchWindow: loginBatchWindow(s.Login.BatchWindow), LoginPointCache: loginPointCache(s.Login.PointCache),
			RefuseUnboundLogins: s.Login.RefuseUnbound,
			OIDC:                oidc, WebDir: webDir(c),
			Ready: c.Root().Writer,
		})
		if err != nil {
			return fmt.Errorf("server serve: %w", err)
		}
		return nil
	}
}

// httpClient returns an HTTP client that trusts the system's roots and, if caFile is
// given, the CAs in that PEM file.
func httpClient(caFile string, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// checkServerURL accepts https URLs, and http ones only to a loopback address with
// insecure set.
func checkServerURL(s string, insecure bool) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("--server %q: want https://host[:port]", s)
	}
	if u.Scheme == "http" {
		if !insecure {
			return fmt.Errorf("--server %q is not https (plain HTTP is for loopback tests only, with --insecure-http)", s)
		}
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("--server %q: --insecure-http works only with a loopback address (127.0.0.1, ::1, localhost)", s)
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Flags of the commands that talk to an auth server.
func serverURLFlag() *ucli.StringFlag {
	return &ucli.StringFlag{Name: "server", Aliases: []string{"s"}, Usage: "the auth server's `URL`, e.g. https://auth.example.com",
		Sources: ucli.NewValueSourceChain(envVar("POLYROOT_SERVER_URL"))}
}

func caFileFlag() *ucli.StringFlag {
	return &ucli.StringFlag{Name: "ca-file", Usage: "PEM `FILE` of a CA to trust besides the system's (a test or enterprise CA)",
		Sources: ucli.NewValueSourceChain(envVar("POLYROOT_CA_FILE")), TakesFile: true}
}

func insecureFlag() *ucli.BoolFlag {
	return &ucli.BoolFlag{Name: "insecure-http", Usage: "allow an http:// server URL on a loopback address, FOR TESTS ONLY (no TLS, no channel binding)"}
}

func adminFlags() []ucli.Flag {
	return []ucli.Flag{serverURLFlag(), caFileFlag(), insecureFlag(),
		&ucli.StringFlag{Name: "tls-server-name", Usage: "check the server's certificate against `NAME` instead of --server's host: " +
			"for an admin listener reached at an address its certificate does not name (e.g. --server https://127.0.0.1:8444 " +
			"--tls-server-name auth.example.com)"}}
}

// adminPost sends one registrar admin request with the admin token from the
// environment.
func adminPost(ctx context.Context, c *ucli.Command, route string, in, out any) error {
	body, _ := json.Marshal(in)
	return adminRequest(ctx, c, http.MethodPost, route, nil, body, out)
}

// adminRequest sends one registrar admin request (query may be nil, body nil for a GET)
// and decodes the answer into out.
func adminRequest(ctx context.Context, c *ucli.Command, method, route string, query url.Values, body []byte, out any) error {
	base := c.String("server")
	if base == "" {
		return errors.New("give the auth server's URL with --server (or $POLYROOT_SERVER_URL)")
	}
	if err := checkServerURL(base, c.Bool("insecure-http")); err != nil {
		return err
	}
	token, err := secretEnv(envAdminToken)
	if err != nil {
		return err
	}
	if token == "" {
		return fmt.Errorf("the admin token must be in the environment variable %s (never a flag), or in a file (mode 0600) that %s_FILE names", envAdminToken, envAdminToken)
	}
	hc, err := httpClient(c.String("ca-file"), 30*time.Second)
	if err != nil {
		return fmt.Errorf("--ca-file: %w", err)
	}
	// The admin token goes with the request: never after a redirect (to http, it would
	// leave in clear).
	var redirectedTo string
	hc.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		redirectedTo = r.URL.Redacted()
		return http.ErrUseLastResponse
	}
	if name := c.String("tls-server-name"); name != "" {
		tr := hc.Transport.(*http.Transport)
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.ServerName = name
	}
	u, _ := url.Parse(base)
	u = u.JoinPath(route)
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		if _, _, tlsErr := tlsProblem(err, "--ca-file"); tlsErr {
			return fmt.Errorf("the auth server %w", transportError(err, "--ca-file"))
		}
		return fmt.Errorf("the auth server %s is unreachable: %w", base, err)
	}
	defer resp.Body.Close()
	if redirectedTo != "" {
		return fmt.Errorf("the server at %s answered with a redirect to %s, which admin commands do not follow (the admin token would go along): use the admin API's own URL", u.Host, redirectedTo)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the server's answer: %w", err)
	}
	if resp.StatusCode == http.StatusBadRequest && bytes.HasPrefix(data, []byte("Client sent an HTTP request to an HTTPS server")) {
		// Go's HTTPS server answers a plain-HTTP request so, before any handler.
		return fmt.Errorf("the auth server at %s serves HTTPS: use https:// in --server", u.Host)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Code, Message string }
		_ = json.Unmarshal(data, &e)
		switch e.Code {
		case "unauthorized":
			return fmt.Errorf("the server refused the admin token (401 unauthorized): check %s", envAdminToken)
		case "unknown_identity":
			return errors.New("the server knows no such identity (404 unknown_identity)")
		case "not_found":
			return fmt.Errorf("no admin API at %s (404 not_found): if the server serves it on a listener of its own "+
				"(admin_listen), give that address with --server", base)
		}
		if e.Code == "" {
			e.Code, e.Message = "http_"+fmt.Sprint(resp.StatusCode), http.StatusText(resp.StatusCode)
		}
		return fmt.Errorf("the server answered %d %s: %s", resp.StatusCode, e.Code, e.Message)
	}
	if err := json.Unmarshal(data, out); err != nil {
		// Not json's own words: they name Go types ("Go value of type wire.…").
		return fmt.Errorf("the answer of %s is not what a polyroot auth server sends (is --server its URL?)", u.Host)
	}
	return nil
}

func serverEnrolCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "enrol",
		Aliases:   []string{"enroll"},
		Usage:     "create a one-time enrolment code for an identity (printed on stdout)",
		ArgsUsage: "ID",
		UsageText: "polyroot server enrol --server URL [--device] [--ttl DURATION] [--permit-days N] ID\n\n" +
			"Examples:\n" +
			"   export " + envAdminToken + "='…'\n" +
			"   polyroot server enrol --server https://auth.example.com alice@example.com\n" +
			"   polyroot server enrol --server https://auth.example.com --device sensor-0042\n" +
			"   polyroot server enrol --server https://auth.example.com --ttl 5m maintenance@example.com   # refused five minutes from now",
		Description: "Asks the registrar admin API to enrol the app-level identity ID (an e-mail, a device\n" +
			"serial) and prints the one-time enrolment code on stdout, alone on its line; hand it\n" +
			"to the user over a trusted channel (polyroot client enroll --code …). The code is\n" +
			"single use and expires (the server's code_ttl, 24h by default).\n" +
			"--device enrols a device that logs in without a PIN; --ttl makes a temporary identity\n" +
			"that the server refuses after that long; --permit-days sets how many permit periods\n" +
			"ahead the client may fetch permits (default: the server's, 7).\n\n" +
			"The admin token comes from the environment variable " + envAdminToken + " (or a file named by " + envAdminToken + "_FILE) only.",
		Flags: append(adminFlags(),
			&ucli.BoolFlag{Name: "device", Usage: "enrol a device that logs in without a PIN"},
			&ucli.DurationFlag{Name: "ttl", Usage: "make a temporary identity, refused `DURATION` after this command (whole seconds, e.g. 5m; its code expires no later)"},
			&ucli.IntFlag{Name: "permit-days", Usage: "permit periods ahead the client may fetch (`N`, 1 to 30; 0: the server's default)"},
		),
		Action: func(ctx context.Context, c *ucli.Command) error {
			if c.Args().Len() != 1 || c.Args().First() == "" {
				return errors.New("server enrol: give one identity ID")
			}
			ttl := c.Duration("ttl")
			if ttl < 0 || ttl%time.Second != 0 {
				return fmt.Errorf("server enrol: --ttl %v: want whole seconds", ttl)
			}
			req := wire.EnrolmentRequest{ID: c.Args().First(), Device: c.Bool("device"), TTL: int64(ttl / time.Second), PermitDays: c.Int("permit-days")}
			var out wire.EnrolmentCreated
			if err := adminPost(ctx, c, "/v1/admin/enrolments", req, &out); err != nil {
				return fmt.Errorf("server enrol: %w", err)
			}
			kind := "identity"
			if req.Device {
				kind = "device"
			}
			fmt.Fprintf(c.Root().ErrWriter, "polyroot: enrolled %s %q (idhash %s); the code below is single use and expires at %s\n",
				kind, req.ID, out.IDHash, out.ExpiresAt.UTC().Format(time.RFC3339))
			if out.NotAfter != nil {
				fmt.Fprintf(c.Root().ErrWriter, "polyroot: the %s itself expires at %s (--ttl counts from now, not from its enrolment)\n",
					kind, out.NotAfter.UTC().Format(time.RFC3339))
			}
			if out.OtherActive > 0 {
				fmt.Fprintf(c.Root().ErrWriter, "polyroot: note: %q already has %s that can log in (a new device?); see: polyroot server enrolments %s\n",
					req.ID, strings.Replace(enrolmentsText(out.OtherActive), "enrolment", "other enrolment", 1), req.ID)
			}
			if !req.Device {
				fmt.Fprintf(c.Root().ErrWriter, "polyroot: to enrol in a browser instead, open %s/login/enrol and type the code (or add #code=CODE to the link)\n",
					strings.TrimSuffix(c.String("server"), "/"))
			}
			_, err := fmt.Fprintln(c.Root().Writer, out.Code)
			return err
		},
	}
}

// identityRequest reads ID (argument) or --idhash.
func identityRequest(c *ucli.Command, cmd string) (wire.IdentityRequest, error) {
	id, idh := c.Args().First(), c.String("idhash")
	switch {
	case c.Args().Len() > 1 || (id == "") == (idh == ""):
		return wire.IdentityRequest{}, fmt.Errorf("server %s: name the identity by its ID or by --idhash, not both", cmd)
	case idh != "":
		if b, err := hex.DecodeString(idh); err != nil || len(b) != 32 {
			return wire.IdentityRequest{}, fmt.Errorf("server %s: --idhash %q: want 64 hex digits", cmd, idh)
		}
	}
	return wire.IdentityRequest{ID: id, IDHash: strings.ToLower(idh)}, nil
}

func idhashFlag() *ucli.StringFlag {
	return &ucli.StringFlag{Name: "idhash", Usage: "name the identity by its idhash `H` (hex, as enrol printed it) instead of its ID"}
}

// loginBatchWindow and loginPointCache map the CLI's 0 ("none") to server.Config's
// negative, whose 0 means the default.
func loginBatchWindow(d duration) time.Duration {
	if d == 0 {
		return -1
	}
	return time.Duration(d)
}

func loginPointCache(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
