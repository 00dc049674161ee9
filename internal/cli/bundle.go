package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/dkgnet"
	"github.com/polyroot/polyroot/internal/dtacmd"
	"github.com/polyroot/polyroot/pairing"
)

// The registrar's private key file is PEM, type "PRIVATE KEY": PKCS #8 of an Ed25519
// key (RFC 8410), as `openssl genpkey -algorithm ed25519` writes it. It must not be
// readable by the group or others.
const registrarKeyPEMType = "PRIVATE KEY"

func registrarCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "registrar",
		Usage: "manage the domain registrar's signing key",
		Description: "The registrar of a domain signs its trust bundle and the tickets DTAs act on.\n\n" +
			"Example:\n   polyroot registrar keygen --out registrar.pem",
		Commands: []*ucli.Command{{
			Name:      "keygen",
			Usage:     "write a new Ed25519 registrar private key (PEM PKCS #8, mode 0600) and print its public key",
			UsageText: "polyroot registrar keygen --out FILE\n\nExample:\n   polyroot registrar keygen --out /etc/polyroot/registrar.pem",
			Description: "The registrar signs the domain's trust bundle and the tickets DTAs act on.\n" +
				"The key file is PEM \"PRIVATE KEY\" (PKCS #8, RFC 8410), as openssl genpkey\n" +
				"-algorithm ed25519 writes it, created with mode 0600; an existing file is never\n" +
				"overwritten. The public key is printed in hex on stdout.",
			Flags: []ucli.Flag{
				&ucli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the private key to `FILE`", TakesFile: true},
			},
			Action: func(_ context.Context, c *ucli.Command) error {
				out := c.String("out")
				if out == "" {
					return errors.New("registrar keygen: --out is required")
				}
				pub, priv, err := ed25519.GenerateKey(nil)
				if err != nil {
					return err
				}
				der, err := x509.MarshalPKCS8PrivateKey(priv)
				if err != nil {
					return err
				}
				f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err != nil {
					return fmt.Errorf("registrar keygen: %w (an existing key is never overwritten)", err)
				}
				err = pem.Encode(f, &pem.Block{Type: registrarKeyPEMType, Bytes: der})
				if err == nil {
					err = f.Sync()
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					os.Remove(out)
					return fmt.Errorf("registrar keygen: %w", err)
				}
				_, err = fmt.Fprintln(c.Root().Writer, hex.EncodeToString(pub))
				return err
			},
		}},
	}
}

// readRegistrarKey reads a registrar key file written by `registrar keygen`.
func readRegistrarKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("registrar key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("registrar key: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("registrar key %s has mode %04o: the group or others can read it (chmod 600 %s)", path, perm, path)
	}
	raw, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("registrar key %s: %w", path, err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != registrarKeyPEMType {
		return nil, fmt.Errorf("registrar key %s: not a PEM %q block", path, registrarKeyPEMType)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("registrar key %s: not PKCS #8", path)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("registrar key %s: not an Ed25519 key", path)
	}
	return priv, nil
}

func bundleCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "bundle",
		Usage: "build, sign and fingerprint a domain's trust bundle",
		Description: "The trust bundle names a domain's DTAs and its registrar key; clients pin its fingerprint.\n\n" +
			"Examples:\n" +
			"   polyroot bundle assemble --domain api.example.com --registrar-key registrar.pem -r dta-1.json -r dta-2.json --out bundle.json\n" +
			"   polyroot bundle fingerprint bundle.json",
		Commands: []*ucli.Command{
			{
				Name:  "assemble",
				Usage: "build the trust bundle from the DTAs' records, sign it with the registrar key, print its fingerprint",
				UsageText: "polyroot bundle assemble --domain DOMAIN --registrar-key FILE [--mode additive|threshold] [--threshold T]\n" +
					"       [--permit-period 24h] [--min-pin-length 4] [--chain-id ID --contract ADDR] [--allow-insecure-http]\n" +
					"       --record dta-1.json --record dta-2.json … --out bundle.json\n\n" +
					"Examples:\n" +
					"   polyroot bundle assemble --domain api.example.com --registrar-key registrar.pem \\\n" +
					"       --chain-id 11155111 --contract 0x5FbD…0aa3 \\\n" +
					"       --record dta-1.json --record dta-2.json --record dta-3.json --out bundle.json\n" +
					"   # a test set-up whose DTAs are http://dta-N:844N on a private container network:\n" +
					"   polyroot bundle assemble --domain api.example.com --registrar-key registrar.pem --allow-insecure-http \\\n" +
					"       --record dta-1.json --record dta-2.json --record dta-3.json --out bundle.json",
				Description: "Each --record is the JSON that `polyroot dta init` printed for one DTA. The bundle\n" +
					"is written to --out (mode 0644; it is public) and its SHA-256 fingerprint, the\n" +
					"value clients pin at bootstrap, is printed in hex on stdout.\n" +
					"Additive mode needs every DTA (t = n). Threshold mode (t of n) needs master shares\n" +
					"from a distributed key generation (polyroot dkg --help): give its --transcript and\n" +
					"the records dta dkg wrote; the transcript must verify and match them. Publish the\n" +
					"transcript beside the bundle: the bundle names its SHA-256 (transcript_sha256), and\n" +
					"each DTA logs that hash when it starts serving under the bundle.\n" +
					"--permit-period 0 makes a domain without time permits. A bundle names at least two\n" +
					"DTAs: one DTA alone would know every client key.\n" +
					"--min-pin-length is the PIN policy clients enforce at enrolment: the least number\n" +
					"of characters (after Unicode NFKC normalisation), 1 to 64.\n" +
					"--chain-id and --contract name where the DTAs anchor their logs (the chain's\n" +
					"eth_chainId and the IssuanceLog contract, polyroot ledger deploy): auditors then take\n" +
					"them from the signed bundle and refuse any other, so that everyone audits the same\n" +
					"anchors. Without them every auditor must be told the contract some other way, and\n" +
					"one told a different contract could be shown a different log.\n" +
					"Every DTA URL must be https://, or http:// on a loopback host (127.0.0.0/8, ::1,\n" +
					"localhost): clients fetch their shares from these URLs, and over plain http anyone\n" +
					"watching the network reads them. --allow-insecure-http accepts other http:// URLs,\n" +
					"for test set-ups only; clients must then be told too (client --allow-insecure-dta-http).\n" +
					"--successor-of OLD.json (after polyroot dta reshare) gives the bundle OLD's serial + 1,\n" +
					"OLD's permit period, PIN policy and anchoring unless given, and refuses unless it is a successor\n" +
					"clients adopt: same domain, registrar key and master public key s·P1 (docs/protocol.md).",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "domain", Aliases: []string{"d"}, Usage: "the `DOMAIN` the bundle is for"},
					&ucli.StringFlag{Name: "registrar-key", Usage: "the registrar's private key `FILE` (polyroot registrar keygen)", TakesFile: true},
					&ucli.StringFlag{Name: "mode", Value: "additive", Usage: "sharing `MODE`: additive (n of n) or threshold (t of n)"},
					&ucli.IntFlag{Name: "threshold", Aliases: []string{"t"}, Usage: "threshold mode: `T`, the DTAs needed (additive: n)", HideDefault: true},
					&ucli.DurationFlag{Name: "permit-period", Value: 24 * time.Hour, Usage: "time-permit `PERIOD`, whole seconds (0: no permits)"},
					&ucli.IntFlag{Name: "min-pin-length", Value: bundle.DefaultMinPINLength, Usage: "the shortest PIN clients accept at enrolment, in characters (`N`, 1 to 64)"},
					&ucli.Uint64Flag{Name: "chain-id", Usage: "the `ID` (eth_chainId) of the chain the DTAs anchor on; with --contract", HideDefault: true},
					&ucli.StringFlag{Name: "contract", Usage: "the IssuanceLog contract's `ADDRESS` (0x…) the DTAs anchor at; with --chain-id"},
					&ucli.StringSliceFlag{Name: "record", Aliases: []string{"r"}, Usage: "a DTA's record `FILE`; repeat for each DTA", TakesFile: true},
					&ucli.StringFlag{Name: "transcript", Usage: "threshold mode: the DKG's transcript `FILE` (dta dkg --transcript-out)", TakesFile: true},
					&ucli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the signed bundle to `FILE`", TakesFile: true},
					&ucli.BoolFlag{Name: "replace", Usage: "overwrite --out if it exists"},
					&ucli.BoolFlag{Name: "allow-insecure-http", Usage: "accept plain http:// DTA URLs on hosts other than loopback, FOR TEST SET-UPS ONLY (shares would cross the network unencrypted)"},
					&ucli.StringFlag{Name: "successor-of", Usage: "after a resharing: make the successor of the bundle `FILE` (its serial + 1; refused unless domain, registrar key, permit period and master public key stay the same)", TakesFile: true},
				},
				Action: assemble,
			},
			{
				Name:      "fingerprint",
				Usage:     "check a trust bundle's signature and print its SHA-256 fingerprint",
				ArgsUsage: "FILE",
				UsageText: "polyroot bundle fingerprint FILE\n\nExample:\n   polyroot bundle fingerprint bundle.json",
				Description: "Prints the hex SHA-256 of the file's exact bytes, the value a client pins, after\n" +
					"checking the registrar's signature and the content. An invalid bundle is an error.",
				Action: func(_ context.Context, c *ucli.Command) error {
					if c.Args().Len() != 1 {
						return errors.New("bundle fingerprint: give one bundle FILE")
					}
					b, fp, err := dtacmd.ReadBundle(c.Args().First())
					if err != nil {
						return fmt.Errorf("bundle fingerprint: %w", err)
					}
					fmt.Fprintf(c.Root().ErrWriter, "polyroot: trust bundle of %s, %s mode, %d of %d DTAs (%s)\n",
						b.Domain, b.Mode, b.Threshold, len(b.DTAs), dtacmd.Indices(b))
					_, err = fmt.Fprintln(c.Root().Writer, fp)
					return err
				},
			},
		},
	}
}

func assemble(_ context.Context, c *ucli.Command) error {
	domain, mode, t, out := c.String("domain"), c.String("mode"), c.Int("threshold"), c.String("out")
	records := c.StringSlice("record")
	switch {
	case domain == "":
		return errors.New("bundle assemble: --domain is required")
	case c.String("registrar-key") == "":
		return errors.New("bundle assemble: --registrar-key is required")
	case len(records) == 0:
		return errors.New("bundle assemble: give each DTA's record with --record")
	case len(records) == 1:
		return errors.New("bundle assemble: a bundle needs at least two DTAs (a --record for each): one DTA alone would know every client key")
	case c.Int("min-pin-length") < 1 || c.Int("min-pin-length") > bundle.MaxMinPINLength:
		return fmt.Errorf("bundle assemble: --min-pin-length %d: want 1 to %d", c.Int("min-pin-length"), bundle.MaxMinPINLength)
	case out == "":
		return errors.New("bundle assemble: --out is required")
	}
	anchoring, err := anchoringFlags(c)
	if err != nil {
		return fmt.Errorf("bundle assemble: %w", err)
	}
	period := c.Duration("permit-period")
	if period < 0 || period%time.Second != 0 {
		return fmt.Errorf("bundle assemble: --permit-period %v: want whole seconds, 0 or more", period)
	}
	n := len(records)
	switch mode {
	case "additive":
		if c.IsSet("threshold") && t != n {
			return fmt.Errorf("bundle assemble: additive mode needs all %d DTAs; --threshold %d does not apply", n, t)
		}
		if c.String("transcript") != "" {
			return errors.New("bundle assemble: --transcript is for threshold mode (--mode threshold)")
		}
		t = n
	case "threshold":
		if t < 2 || t > n {
			return fmt.Errorf("bundle assemble: threshold mode needs --threshold between 2 and %d", n)
		}
		if c.String("transcript") == "" { // t-of-n needs shares of one polynomial: a DKG's
			return errors.New("bundle assemble: threshold mode needs master shares from a distributed key generation: give its --transcript (polyroot dkg --help)")
		}
	default:
		return fmt.Errorf("bundle assemble: --mode %q: want additive or threshold", mode)
	}
	priv, err := readRegistrarKey(c.String("registrar-key"))
	if err != nil {
		return fmt.Errorf("bundle assemble: %w", err)
	}
	b := &bundle.Bundle{Version: 1, Protocol: pairing.ProtocolVersion, Domain: domain, Mode: mode, Threshold: t,
		PermitPeriod: uint64(period / time.Second), RegistrarKey: hex.EncodeToString(priv.Public().(ed25519.PublicKey)),
		MinPINLength: c.Int("min-pin-length"), Anchoring: anchoring}
	from := map[uint32]string{}
	for _, path := range records {
		rec, err := readRecord(path, domain)
		if err != nil {
			return fmt.Errorf("bundle assemble: %w", err)
		}
		if err := bundle.CheckDTAURL(rec.URL, c.Bool("allow-insecure-http")); errors.Is(err, bundle.ErrPlainHTTP) {
			return fmt.Errorf("bundle assemble: record %s: DTA %d's URL %s is plain http on a host that is not loopback: "+
				"clients would fetch their shares in the clear; give the DTA an https:// URL (dta init --url), "+
				"or, for a test set-up only, pass --allow-insecure-http", path, rec.Index, rec.URL)
		}
		if other, dup := from[rec.Index]; dup {
			return fmt.Errorf("bundle assemble: records %s and %s are both DTA %d", other, path, rec.Index)
		}
		from[rec.Index] = path
		b.DTAs = append(b.DTAs, *rec)
	}
	sort.Slice(b.DTAs, func(i, j int) bool { return b.DTAs[i].Index < b.DTAs[j].Index })
	if last := b.DTAs[n-1].Index; int(last) != n {
		fmt.Fprintf(c.Root().ErrWriter, "polyroot: warning: the DTAs are %s: some index up to %d has no record (fine if that DTA was retired)\n",
			dtacmd.Indices(b), last)
	}
	var tr *dkgnet.Transcript
	if mode == "threshold" {
		if tr, err = checkDKGTranscript(c.String("transcript"), b, c.Root().ErrWriter); err != nil { // dkg.go
			return fmt.Errorf("bundle assemble: %w", err)
		}
	}
	if err := makeSuccessor(c, b, tr); err != nil { // successor.go
		return fmt.Errorf("bundle assemble: %w", err)
	}
	file, fp, err := bundle.Sign(b, priv)
	if err != nil {
		return fmt.Errorf("bundle assemble: %w", err)
	}
	if _, err := os.Stat(out); err == nil && !c.Bool("replace") {
		return fmt.Errorf("bundle assemble: %s exists: clients may have pinned it; give --replace to overwrite it", out)
	}
	if err := writeFileAtomic(out, file, 0o644); err != nil {
		return fmt.Errorf("bundle assemble: %w", err)
	}
	fmt.Fprintf(c.Root().ErrWriter, "polyroot: wrote %s: %s, %s mode, %d of %d DTAs, permit period %v\n",
		out, domain, mode, t, n, time.Duration(b.PermitPeriod)*time.Second)
	_, err = fmt.Fprintln(c.Root().Writer, fp)
	return err
}

// anchoringFlags returns the anchoring --chain-id and --contract name, nil for none.
func anchoringFlags(c *ucli.Command) (*bundle.Anchoring, error) {
	id, addr := c.Uint64("chain-id"), c.String("contract")
	switch {
	case id == 0 && addr == "":
		return nil, nil
	case id == 0 || addr == "":
		return nil, errors.New("--chain-id and --contract go together: the chain the DTAs anchor on and the contract there")
	case !common.IsHexAddress(addr) || common.HexToAddress(addr) == (common.Address{}):
		return nil, fmt.Errorf("--contract %q: want the IssuanceLog contract's address (0x and 40 hex digits)", addr)
	}
	return &bundle.Anchoring{ChainID: id, Contract: strings.ToLower(common.HexToAddress(addr).Hex())}, nil
}

// readRecord reads and checks one DTA record (as `dta init` prints it) for domain.
func readRecord(path, domain string) (*bundle.DTA, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	var rec bundle.DTA
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&rec); err != nil {
		return nil, fmt.Errorf("record %s: not a DTA record (the JSON dta init prints): %v", path, err)
	}
	if d.More() {
		return nil, fmt.Errorf("record %s: trailing data after the record", path)
	}
	if rec.Index == 0 {
		return nil, fmt.Errorf("record %s: DTA index missing or 0", path)
	}
	if err := checkURL(rec.URL); err != nil {
		return nil, fmt.Errorf("record %s: url: %w", path, err)
	}
	if _, err := rec.CommitmentPoint(); err != nil {
		return nil, fmt.Errorf("record %s: %w", path, err)
	}
	if _, err := rec.PublicKey(); err != nil {
		return nil, fmt.Errorf("record %s: %w", path, err)
	}
	if want := dta.LogOrigin(domain, rec.Index); rec.LogOrigin != want {
		return nil, fmt.Errorf("record %s: log origin %q is not %q: is it a record of another domain?", path, rec.LogOrigin, want)
	}
	return &rec, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s)://host[:port] URL", s)
	}
	return nil
}

// checkWritable checks that a file can be created in path's directory.
func checkWritable(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".polyroot-check-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// writeFileAtomic replaces path with data: a temporary file in the same directory,
// synced, renamed over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
