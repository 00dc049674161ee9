package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/dkgnet"
	"github.com/polyroot/polyroot/internal/keystore"
)

// A ceremonyParty is what `dta dkg` and `dta reshare` share before their ceremony:
// the session file, this DTA's record, its keystore and signing key, and a logger.
type ceremonyParty struct {
	session *dkgnet.SessionFile
	record  *bundle.DTA
	ks      keystore.Keystore
	desc    string // the keystore, for messages
	key     ed25519.PrivateKey
	logger  *slog.Logger
}

// ceremonyFlags are the flags of `dta dkg` and `dta reshare` (which openCeremony,
// serveBoard and run read), with the usage texts that differ, then extra and the
// keystore flags.
func ceremonyFlags(file *configFile, sessionUsage, recordUsage, recordOutUsage string, extra ...ucli.Flag) []ucli.Flag {
	flags := []ucli.Flag{
		configFlag(file),
		&ucli.StringFlag{Name: "session", Usage: sessionUsage, TakesFile: true},
		&ucli.StringFlag{Name: "record", Aliases: []string{"r"}, Usage: recordUsage, TakesFile: true},
		&ucli.StringFlag{Name: "listen", Usage: "serve the ceremony board on `HOST:PORT`"},
		&ucli.DurationFlag{Name: "start-timeout", Value: defaultDKGStartTimeout, Usage: "how long to wait for every other DTA to start"},
		&ucli.DurationFlag{Name: "round-timeout", Value: dkgnet.DefaultRoundTimeout, Usage: "how long each later round waits for the other DTAs"},
		&ucli.StringFlag{Name: "transcript-out", Usage: "write the transcript to `FILE` (public)", TakesFile: true},
		&ucli.StringFlag{Name: "record-out", Usage: recordOutUsage, TakesFile: true},
	}
	flags = append(flags, extra...)
	flags = append(flags, &ucli.StringFlag{Name: "log-level", Value: "info", Usage: "log `LEVEL` on stderr: debug, info, warn or error"})
	return append(flags, keystoreFlags(file)...)
}

// openCeremony reads the session (--session; a resharing's when reshare is set) and
// the record (--record), opens the keystore and checks that its signing key is the
// record's. cmd prefixes errors.
func openCeremony(ctx context.Context, c *ucli.Command, cmd string, reshare bool) (*ceremonyParty, error) {
	sessPath, recPath := c.String("session"), c.String("record")
	raw, err := readSmallFile(sessPath)
	if err != nil {
		return nil, fmt.Errorf("%s: session: %w", cmd, err)
	}
	sf, err := dkgnet.ParseSessionFile(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", cmd, sessPath, err)
	}
	switch {
	case reshare && sf.Reshare == nil:
		return nil, fmt.Errorf("%s: %s is the session of a key generation (polyroot dta dkg), not of a resharing", cmd, sessPath)
	case !reshare && sf.Reshare != nil:
		return nil, fmt.Errorf("%s: %s is the session of a resharing (polyroot dta reshare), not of a key generation", cmd, sessPath)
	}
	rec, err := readDKGRecord(recPath, sf.Domain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	logger, err := newLogger("text", c.String("log-level"), c.Root().ErrWriter)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	ks, desc, err := openKeystore(ctx, c, c.Root().ErrWriter)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	key, err := dta.SigningKey(ctx, ks)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (%s)", cmd, err, desc)
	}
	if hex.EncodeToString(key.Public().(ed25519.PublicKey)) != rec.SigningKey {
		return nil, fmt.Errorf("%s: the signing key in %s is not the one in %s", cmd, desc, recPath)
	}
	return &ceremonyParty{session: sf, record: rec, ks: ks, desc: desc, key: key, logger: logger.With("dta", rec.Index)}, nil
}

// serveBoard serves the party's ceremony board on --listen until the returned stop
// is called, and returns the address it listens on.
func (p *ceremonyParty) serveBoard(c *ucli.Command, cmd string) (*dkgnet.Board, net.Addr, func(), error) {
	board, err := dkgnet.NewBoard(p.session, p.logger)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: --listen: %w", cmd, err)
	}
	// Other parties long-poll the board for up to 10 s (dkgnet): writes get more than
	// that; slow or idle connections of anyone else are cut.
	srv := &http.Server{Handler: board, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	go srv.Serve(ln)
	return board, ln.Addr(), func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}, nil
}

// run takes part in the ceremony with the party's session, key and logger and the
// command's timeouts; cfg carries the rest (a dealer's OldShare in a resharing).
func (p *ceremonyParty) run(ctx context.Context, c *ucli.Command, board *dkgnet.Board, cfg dkgnet.Config) (*dkgnet.Result, error) {
	cfg.Session, cfg.Key, cfg.Logger = p.session, p.key, p.logger
	cfg.StartTimeout, cfg.RoundTimeout = c.Duration("start-timeout"), c.Duration("round-timeout")
	return dkgnet.Run(ctx, cfg, board)
}
