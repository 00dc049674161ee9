package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/ethereum/go-ethereum/common"
	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/dtacmd"
	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/ledger"
)

// Defaults of `polyroot dta serve`.
const (
	defaultListen             = "127.0.0.1:8441"
	defaultDTAMetricsListen   = "127.0.0.1:9441" // the operations listener (GET /metrics)
	defaultRatePerSecond      = 50
	defaultRateBurst          = 100
	defaultLogRatePerSecond   = dta.DefaultLogRatePerSecond
	defaultLogRateBurst       = dta.DefaultLogRateBurst
	defaultCheckpointInterval = time.Second
	defaultShutdownTimeout    = 30 * time.Second
	defaultChain              = dtacmd.ChainNone
	defaultAnchorPeriod       = ledger.DefaultAnchorPeriod
	defaultConfirmations      = ledger.DefaultConfirmations
)

func dtaCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "dta",
		Usage: "run a distributed trust authority: create its keys, serve issuance",
		Description: "A DTA holds one master share of a domain's key and issues shares of client and\n" +
			"server keys on tickets signed by the domain's registrar, logging every issuance.\n\n" +
			"Example, the set-up of one DTA:\n" +
			"   polyroot dta init --domain api.example.com --index 1 --url https://dta1.example.net --keystore-dir /var/lib/polyroot/dta-1/keys --out dta-1.json\n" +
			"   (the registrar assembles the trust bundle from every DTA's record: polyroot bundle assemble)\n" +
			"   polyroot dta serve --config /etc/polyroot/dta-1.toml",
		Commands: []*ucli.Command{dtaInitCommand(), dtaServeCommand(), dtaDKGCommand(), dtaReshareCommand(), dtaRetireCommand()},
	}
}

func indexFlag(file *configFile, category string) *ucli.Uint32Flag {
	return &ucli.Uint32Flag{Name: "index", Aliases: []string{"i"}, Usage: "this DTA's `INDEX` in the domain, 1 to n (config: index)",
		Sources: sources(file, "POLYROOT_DTA_INDEX", "index"), HideDefault: true, Category: category}
}

func dtaInitCommand() *ucli.Command {
	file := &configFile{}
	return &ucli.Command{
		Name:  "init",
		Usage: "create this DTA's master share and signing key, and print its public record",
		UsageText: "polyroot dta init --domain DOMAIN --index I --url URL [--keystore file|vault] [keystore flags] [--out FILE]\n\n" +
			"Examples:\n" +
			"   export " + envPassphrase + "='…'   # the file keystore's passphrase\n" +
			"   polyroot dta init --domain api.example.com --index 1 --url https://dta1.example.net \\\n" +
			"       --keystore-dir /var/lib/polyroot/dta-1/keys --out dta-1.json\n\n" +
			"   export VAULT_TOKEN='…'\n" +
			"   polyroot dta init --domain api.example.com --index 2 --url https://dta2.example.net --keystore vault \\\n" +
			"       --vault-addr https://vault.example.net:8200 --vault-path polyroot/dta-2 > dta-2.json\n\n" +
			"   polyroot dta init --config /etc/polyroot/dta-1.toml --domain api.example.com --url https://dta1.example.net",
		Description: "Creates a fresh master share s_i and an Ed25519 signing key in the keystore and\n" +
			"prints the DTA's public record as JSON: index, URL, commitment C_i = s_i·P1, the\n" +
			"Ed25519 public key and the log origin. Send the record to the domain's registrar,\n" +
			"who puts every DTA's record in the trust bundle (polyroot bundle assemble).\n" +
			"It refuses to overwrite keys that already exist. The keystore settings can come\n" +
			"from the DTA's config file (--config), as for dta serve.\n\n" +
			"Secrets never come from flags or the config file: " + envPassphrase + " (file\n" +
			"keystore), " + envVaultToken + " or " + envVaultSecretID + " (vault keystore); each\n" +
			"may instead be in a file named by NAME_FILE (mode 0600 or 0400, e.g. a systemd\n" +
			"credential: " + envPassphrase + "_FILE=%d/passphrase).\n" +
			"For tests only: " + envScryptLogN + " lowers the file keystore's scrypt work factor.",
		Flags: append([]ucli.Flag{
			configFlag(file),
			&ucli.StringFlag{Name: "domain", Aliases: []string{"d"}, Usage: "the `DOMAIN` (backend) this DTA serves, e.g. api.example.com"},
			indexFlag(file, ""),
			&ucli.StringFlag{Name: "url", Usage: "the `URL` where clients reach this DTA (goes into the trust bundle)"},
			&ucli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the record to `FILE` instead of stdout", TakesFile: true},
			&ucli.BoolFlag{Name: "dkg", Usage: "threshold mode: create the signing key only; the master share comes from polyroot dta dkg (the record's commitment stays empty until then)"},
		}, keystoreFlags(file)...),
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := file.load(); err != nil {
				return err
			}
			domain, index, url, out := c.String("domain"), c.Uint32("index"), c.String("url"), c.String("out")
			switch {
			case domain == "":
				return fmt.Errorf("dta init: --domain is required")
			case index == 0:
				return fmt.Errorf("dta init: --index is required (1 to n)")
			case url == "":
				return fmt.Errorf("dta init: --url is required")
			}
			if err := checkURL(url); err != nil {
				return fmt.Errorf("dta init: --url: %w", err)
			}
			if out != "" {
				if err := checkWritable(out); err != nil {
					return fmt.Errorf("dta init: --out: %w", err)
				}
			}
			ks, desc, err := openKeystore(ctx, c, c.Root().ErrWriter)
			if err != nil {
				return fmt.Errorf("dta init: %w", err)
			}
			create := dta.Init
			if c.Bool("dkg") {
				create = dta.InitForDKG // signing key only: the share comes from dta dkg
			}
			rec, err := create(ctx, ks, domain, index, url)
			if err != nil {
				return fmt.Errorf("dta init: %w", err)
			}
			js, err := json.MarshalIndent(rec, "", "  ")
			if err != nil {
				return err
			}
			js = append(js, '\n')
			if out == "" {
				_, err = c.Root().Writer.Write(js)
				return err
			}
			if err := writeFileAtomic(out, js, 0o644); err != nil {
				return fmt.Errorf("dta init: the keys are created but the record could not be written: %w", err)
			}
			fmt.Fprintf(c.Root().ErrWriter, "polyroot: DTA %d of %s: keys created in %s; public record written to %s\n", index, domain, desc, out)
			return nil
		},
	}
}

func dtaServeCommand() *ucli.Command {
	file := &configFile{}
	str, dur := flagMakers(file)
	flags := []ucli.Flag{
		configFlag(file),
		str("listen", "POLYROOT_DTA_LISTEN", "listen", defaultListen, "Service", "listen on `HOST:PORT` (port 0: any free port)", false),
		metricsFlag(file, "POLYROOT_DTA_METRICS_LISTEN", defaultDTAMetricsListen),
		str("bundle", "POLYROOT_DTA_BUNDLE", "bundle", "", "Service", "the domain's signed trust bundle `FILE`", true),
		indexFlag(file, "Service"),
		str("data-dir", "POLYROOT_DTA_DATA_DIR", "data_dir", "", "Service", "`DIR` for the state database and the transparency log", true),
		dur("checkpoint-interval", "POLYROOT_DTA_CHECKPOINT_INTERVAL", "checkpoint_interval", defaultCheckpointInterval,
			"how often the log signs a new checkpoint (at least 100ms)"),
		str("chain", "POLYROOT_DTA_CHAIN", "chain.type", defaultChain, "Anchoring",
			"anchor the log's checkpoints on `CHAIN`: none; embedded (an in-memory chain inside this process, for devnet and demos: its anchors vanish with it); or rpc (an EVM JSON-RPC endpoint)", false),
		str("rpc-url", "POLYROOT_DTA_RPC_URL", "chain.rpc_url", "", "Anchoring", "the chain's JSON-RPC `URL` (--chain rpc)", false),
		str("chain-key-file", "POLYROOT_DTA_CHAIN_KEY_FILE", "chain.key_file", "", "Anchoring",
			"`FILE` with the hex private key of the address registered to anchor this log (--chain rpc; mode 0600)", true),
		str("contract", "POLYROOT_DTA_CONTRACT", "chain.contract", "", "Anchoring", "the IssuanceLog contract's `ADDRESS` (--chain rpc)", false),
		&ucli.DurationFlag{Name: "anchor-period", Value: defaultAnchorPeriod, Category: "Anchoring",
			Usage:   "how often the log's latest checkpoint is anchored, if the log grew (devnet: 10s); keep it well under a day: audits fail a log whose oldest unanchored entry is older than their --max-anchor-age (default 24h) (config: chain.anchor_period)",
			Sources: sources(file, "POLYROOT_DTA_ANCHOR_PERIOD", "chain.anchor_period")},
		&ucli.Uint64Flag{Name: "confirmations", Value: defaultConfirmations, Category: "Anchoring",
			Usage:   "`N` blocks after which an anchor counts as done (config: chain.confirmations)",
			Sources: sources(file, "POLYROOT_DTA_CONFIRMATIONS", "chain.confirmations")},
		&ucli.FloatFlag{Name: "log-rate-limit", Value: defaultLogRatePerSecond, Category: "Service",
			Usage:   "`N` requests per second allowed to one client address on the transparency log's routes, GET /v1/log/… (an auditor reads 2 per 256 entries) (config: log_rate.per_second)",
			Sources: sources(file, "POLYROOT_DTA_LOG_RATE_LIMIT", "log_rate.per_second")},
		&ucli.IntFlag{Name: "log-rate-burst", Value: defaultLogRateBurst, Category: "Service",
			Usage:   "burst of `N` requests allowed to one client address on the log's routes (config: log_rate.burst)",
			Sources: sources(file, "POLYROOT_DTA_LOG_RATE_BURST", "log_rate.burst")},
	}
	flags = append(flags, configCheckFlags("dta init")...)
	flags = append(flags, serviceFlags(file, "POLYROOT_DTA")...)
	flags = append(flags, keystoreFlags(file)...)
	return &ucli.Command{
		Name:  "serve",
		Usage: "serve this DTA's HTTP API until SIGINT or SIGTERM",
		UsageText: "polyroot dta serve --config FILE [flags]\n\n" +
			"Examples:\n" +
			"   export " + envPassphrase + "='…'\n" +
			"   polyroot dta serve --config deploy/examples/dta-1.toml\n" +
			"   polyroot dta serve --config dta-1.toml --listen 0.0.0.0:8441 --log-format text\n" +
			"   POLYROOT_DTA_LISTEN=127.0.0.1:9441 polyroot dta serve --config dta-1.toml --check-config",
		Description: "Serves the DTA's API (/v1/shares/…, /v1/revocations, /v1/record, /v1/log/…,\n" +
			"/livez, /readyz) on --listen, and its Prometheus metrics (GET /metrics) on a separate\n" +
			"operations listener, --metrics-listen (default " + defaultDTAMetricsListen + "; give each DTA on one host\n" +
			"its own port). It prints one line to stdout when it accepts connections:\n" +
			"   polyroot: DTA <i> of <domain> ready at <URL> (log …, bundle …; metrics at <URL>)\n" +
			"Logs go to stderr (log/slog, JSON or text), Tessera's included.\n\n" +
			"Settings, highest precedence first: command-line flags, then environment variables\n" +
			"(named in [$…] below), then the TOML config file (its key after \"config:\"; a dotted\n" +
			"key is a table: log.format is `format` under `[log]`), then the defaults. Relative\n" +
			"paths in the config file are relative to the file's directory. An unknown key in\n" +
			"the file is an error. deploy/examples/dta-*.toml show every key.\n\n" +
			"Secrets never come from flags or the config file: " + envPassphrase + " (file\n" +
			"keystore), " + envVaultToken + " or " + envVaultSecretID + " (vault keystore); each\n" +
			"may instead be in a file named by NAME_FILE (mode 0600 or 0400, e.g. a systemd\n" +
			"credential: " + envPassphrase + "_FILE=%d/passphrase).\n\n" +
			"Signals: SIGHUP re-reads the keys from the keystore and the trust bundle file (after\n" +
			"a rotation) and swaps them in together if they match, and re-reads the TLS\n" +
			"certificate; a failed reload keeps what is in use. SIGINT and SIGTERM stop accepting\n" +
			"connections, let the requests in flight finish (--shutdown-timeout), then close the log.",
		Flags:  flags,
		Action: serveAction(file),
	}
}

// redacted is the settings as --print-config shows them: an RPC URL's path, query and
// credentials, which often hold a provider's API key, replaced by "…".
func (s *fileConfig) redacted() any {
	cp := *s
	if cp.Chain.RPCURL != "" {
		cp.Chain.RPCURL = ledger.RedactURL(cp.Chain.RPCURL)
	}
	return &cp
}

// serveSettings resolves and checks the settings of dta serve, as the config file
// schema (for --check-config).
func serveSettings(c *ucli.Command) (*fileConfig, error) {
	var s fileConfig
	s.Listen, s.Bundle, s.Index, s.DataDir = c.String("listen"), c.String("bundle"), c.Uint32("index"), c.String("data-dir")
	s.MetricsListen = c.String("metrics-listen")
	s.CheckpointInterval, s.ShutdownTimeout = duration(c.Duration("checkpoint-interval")), duration(c.Duration("shutdown-timeout"))
	s.Log.Format, s.Log.Level = c.String("log-format"), c.String("log-level")
	s.Rate.PerSecond, s.Rate.Burst = c.Float("rate-limit"), c.Int("rate-burst")
	s.LogRate.PerSecond, s.LogRate.Burst = c.Float("log-rate-limit"), c.Int("log-rate-burst")
	s.TLS.Cert, s.TLS.Key = c.String("tls-cert"), c.String("tls-key")
	k := &s.Keystore
	k.Type, k.Dir = c.String("keystore"), c.String("keystore-dir")
	v := &k.Vault
	v.Addr, v.Mount, v.Path = c.String("vault-addr"), c.String("vault-mount"), c.String("vault-path")
	v.AppRoleRoleID, v.AppRoleMount = c.String("vault-approle-role-id"), c.String("vault-approle-mount")
	v.CAFile, v.Namespace = c.String("vault-ca-file"), c.String("vault-namespace")
	ch := &s.Chain
	ch.Type, ch.RPCURL, ch.KeyFile, ch.Contract = c.String("chain"), c.String("rpc-url"), c.String("chain-key-file"), c.String("contract")
	ch.AnchorPeriod, ch.Confirmations = duration(c.Duration("anchor-period")), c.Uint64("confirmations")

	missing := func(what, flag, env, key string) error {
		return fmt.Errorf("dta serve: no %s: give --%s, $%s or %s in the config file", what, flag, env, key)
	}
	switch {
	case s.Listen == "":
		return nil, missing("listen address", "listen", "POLYROOT_DTA_LISTEN", "listen")
	case s.Bundle == "":
		return nil, missing("trust bundle", "bundle", "POLYROOT_DTA_BUNDLE", "bundle")
	case s.Index == 0:
		return nil, missing("DTA index", "index", "POLYROOT_DTA_INDEX", "index")
	case s.DataDir == "":
		return nil, missing("data directory", "data-dir", "POLYROOT_DTA_DATA_DIR", "data_dir")
	case s.Rate.PerSecond <= 0 || s.Rate.Burst < 1:
		return nil, fmt.Errorf("dta serve: rate limit %g/s with burst %d: both must be positive", s.Rate.PerSecond, s.Rate.Burst)
	case s.LogRate.PerSecond <= 0 || s.LogRate.Burst < 1:
		return nil, fmt.Errorf("dta serve: log rate limit %g/s with burst %d: both must be positive", s.LogRate.PerSecond, s.LogRate.Burst)
	case time.Duration(s.CheckpointInterval) < 100*time.Millisecond:
		return nil, fmt.Errorf("dta serve: checkpoint interval %v is below 100ms", time.Duration(s.CheckpointInterval))
	case s.ShutdownTimeout <= 0:
		return nil, fmt.Errorf("dta serve: the shutdown timeout must be positive")
	case (s.TLS.Cert == "") != (s.TLS.Key == ""):
		return nil, fmt.Errorf("dta serve: TLS needs both --tls-cert and --tls-key")
	case k.Type != "file" && k.Type != "vault":
		return nil, fmt.Errorf("dta serve: --keystore %q: want file or vault", k.Type)
	case k.Type == "file" && k.Dir == "":
		return nil, missing("keystore directory", "keystore-dir", "POLYROOT_KEYSTORE_DIR", "keystore.dir")
	case k.Type == "vault" && v.Addr == "":
		return nil, missing("Vault address", "vault-addr", "POLYROOT_VAULT_ADDR", "keystore.vault.addr")
	case ch.Type != dtacmd.ChainNone && ch.Type != dtacmd.ChainEmbedded && ch.Type != dtacmd.ChainRPC:
		return nil, fmt.Errorf("dta serve: --chain %q: want none, embedded or rpc", ch.Type)
	case ch.AnchorPeriod <= 0:
		return nil, fmt.Errorf("dta serve: the anchor period must be positive")
	case ch.Confirmations < 1:
		return nil, fmt.Errorf("dta serve: --confirmations must be at least 1")
	case ch.Type == dtacmd.ChainRPC && ch.RPCURL == "":
		return nil, missing("chain RPC URL", "rpc-url", "POLYROOT_DTA_RPC_URL", "chain.rpc_url")
	case ch.Type == dtacmd.ChainRPC && ch.KeyFile == "":
		return nil, missing("chain key file", "chain-key-file", "POLYROOT_DTA_CHAIN_KEY_FILE", "chain.key_file")
	case ch.Type == dtacmd.ChainRPC && !common.IsHexAddress(ch.Contract):
		return nil, fmt.Errorf("dta serve: --contract %q: want the IssuanceLog contract's address (0x and 40 hex digits)", ch.Contract)
	}
	if _, err := checkMetricsListen("dta serve", s.Listen, s.MetricsListen); err != nil {
		return nil, err
	}
	if _, err := newLogger(s.Log.Format, s.Log.Level, io.Discard); err != nil {
		return nil, fmt.Errorf("dta serve: %w", err)
	}
	return &s, nil
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(httpx.RequestIDHandler(slog.NewJSONHandler(w, opts))), nil
	case "text":
		return slog.New(httpx.RequestIDHandler(slog.NewTextHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("--log-format %q: want json or text", format)
}

func serveAction(file *configFile) ucli.ActionFunc {
	return func(ctx context.Context, c *ucli.Command) error {
		defer holdSIGHUP()()
		s, done, err := resolveServe(c, file, serveSettings)
		if err != nil {
			return err
		}
		metrics, _ := checkMetricsListen("dta serve", s.Listen, s.MetricsListen) // checked by serveSettings
		if done {
			if c.Bool("check-config") {
				return checkDTAConfig(ctx, c, s).report(c.Root().ErrWriter, "dta serve")
			}
			return nil
		}
		// Before the keystore's passphrase goes through scrypt: a taken data directory
		// or port is known at once.
		if err := busyError(s.DataDir, dtaStateDB, listenSetting{"listen", s.Listen}, listenSetting{"metrics-listen", metrics}); err != nil {
			return fmt.Errorf("dta serve: %w", err)
		}
		logger, _ := newLogger(s.Log.Format, s.Log.Level, c.Root().ErrWriter) // checked by serveSettings
		logger = logger.With("dta", s.Index)                                  // on every line, Tessera's too, as in the devnet
		ks, desc, err := openKeystore(ctx, c, c.Root().ErrWriter)
		if err != nil {
			return fmt.Errorf("dta serve: %w", err)
		}
		logger.Info("starting DTA", "keystore", desc, "data_dir", s.DataDir, "bundle", s.Bundle, "config", file.path)
		err = dtacmd.Serve(ctx, dtacmd.Config{
			Listen: s.Listen, MetricsListen: metrics, BundleFile: s.Bundle, Index: s.Index, DataDir: s.DataDir, Keys: ks, Logger: logger,
			RatePerSecond: s.Rate.PerSecond, RateBurst: s.Rate.Burst,
			LogRatePerSecond: s.LogRate.PerSecond, LogRateBurst: s.LogRate.Burst,
			CheckpointInterval: time.Duration(s.CheckpointInterval), ShutdownTimeout: time.Duration(s.ShutdownTimeout),
			TLSCert: s.TLS.Cert, TLSKey: s.TLS.Key,
			Chain: s.Chain.Type,
			Anchoring: dtacmd.Anchoring{RPCURL: s.Chain.RPCURL, KeyFile: s.Chain.KeyFile, Contract: s.Chain.Contract,
				Period: time.Duration(s.Chain.AnchorPeriod), Confirmations: s.Chain.Confirmations},
			Ready: c.Root().Writer,
		})
		if err != nil {
			return fmt.Errorf("dta serve: %w", err)
		}
		return nil
	}
}

// holdSIGHUP catches SIGHUP, dropping it, until the returned function is called. A
// SIGHUP while a service starts (the keystore's scrypt takes a while) would otherwise
// end the process, which systemd counts as a clean exit; there is nothing to reload
// yet, and httpx.Serve handles SIGHUP once it runs. (signal.Ignore would also mute
// the other services of the same process.)
func holdSIGHUP() (release func()) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGHUP)
	return func() { signal.Stop(c) }
}

// resolveServe loads the config file and resolves a serve command's settings; with
// --print-config or --check-config it prints them as TOML (they hold no secrets) and
// reports done (the caller then runs the checks of --check-config).
func resolveServe[S any](c *ucli.Command, file *configFile, settings func(*ucli.Command) (S, error)) (s S, done bool, err error) {
	if err = file.load(); err != nil {
		return s, false, err
	}
	if s, err = settings(c); err != nil || !c.Bool("check-config") && !c.Bool("print-config") {
		return s, false, err
	}
	w := c.Root().Writer
	if file.path != "" {
		fmt.Fprintf(w, "# resolved from flags, environment and %s\n", file.path)
	}
	var shown any = s
	if r, ok := shown.(interface{ redacted() any }); ok {
		shown = r.redacted()
	}
	if err = toml.NewEncoder(w).Encode(shown); err != nil {
		return s, true, err
	}
	_, err = fmt.Fprintln(w)
	return s, true, err
}

// serviceFlags are the settings every serve command has: rate limits, shutdown
// timeout, TLS and logging; envPrefix names their environment variables.
func serviceFlags(file *configFile, envPrefix string) []ucli.Flag {
	str := func(name, env, key, value, category, usage string, takesFile bool) *ucli.StringFlag {
		return &ucli.StringFlag{Name: name, Value: value, Usage: usage + " (config: " + key + ")",
			Sources: sources(file, env, key), Category: category, TakesFile: takesFile}
	}
	return []ucli.Flag{
		&ucli.FloatFlag{Name: "rate-limit", Value: defaultRatePerSecond, Category: "Service",
			Usage:   "`N` requests per second allowed to one client address (config: rate.per_second)",
			Sources: sources(file, envPrefix+"_RATE_LIMIT", "rate.per_second")},
		&ucli.IntFlag{Name: "rate-burst", Value: defaultRateBurst, Category: "Service",
			Usage:   "burst of `N` requests allowed to one client address (config: rate.burst)",
			Sources: sources(file, envPrefix+"_RATE_BURST", "rate.burst")},
		&ucli.DurationFlag{Name: "shutdown-timeout", Value: defaultShutdownTimeout, Category: "Service",
			Usage:   "on SIGINT/SIGTERM, how long requests in flight may take to finish (config: shutdown_timeout)",
			Sources: sources(file, envPrefix+"_SHUTDOWN_TIMEOUT", "shutdown_timeout")},
		str("tls-cert", envPrefix+"_TLS_CERT", "tls.cert", "", "TLS", "serve HTTPS with this PEM certificate `FILE` (with --tls-key)", true),
		str("tls-key", envPrefix+"_TLS_KEY", "tls.key", "", "TLS", "the PEM private key `FILE` of --tls-cert", true),
		str("log-format", "POLYROOT_LOG_FORMAT", "log.format", "json", "Logging", "log `FORMAT` on stderr: json or text", false),
		str("log-level", "POLYROOT_LOG_LEVEL", "log.level", "info", "Logging", "log `LEVEL`: debug, info, warn or error", false),
	}
}
