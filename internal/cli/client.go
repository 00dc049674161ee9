package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/client"
)

// The client's directory: --dir, $POLYROOT_CLIENT_DIR, or polyroot under the user's
// configuration directory ($XDG_CONFIG_HOME or ~/.config on Linux and BSD, ~/Library/
// Application Support on macOS). One directory holds one identity of one domain; use
// one directory per domain or identity.
const envClientDir = "POLYROOT_CLIENT_DIR"

func defaultClientDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "polyroot")
	}
	return ""
}

// maxSecretLine bounds a PIN or token read from stdin.
const maxSecretLine = 16 << 10

// readSecretLine reads one line (without its line ending) from r: a PIN or an access
// token. It is never echoed.
func readSecretLine(r io.Reader, what string) ([]byte, error) {
	if r == nil {
		r = os.Stdin
	}
	line, err := bufio.NewReaderSize(io.LimitReader(r, maxSecretLine), 4096).ReadSlice('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("the %s on standard input is too long", what)
		}
		return nil, fmt.Errorf("reading the %s from standard input: %w", what, err)
	}
	out := []byte(strings.TrimRight(string(line), "\r\n"))
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s on standard input", what)
	}
	return out, nil
}

// clientError words a client library error for the command: the library's messages
// already carry the kind and the remedy.
func clientError(cmd string, err error) error {
	if msg := clientTLSError(err); msg != "" {
		return fmt.Errorf("client %s: %s", cmd, msg)
	}
	msg := strings.TrimPrefix(err.Error(), "client: ")
	// The library names its option; its command-line form is the flag.
	msg = strings.ReplaceAll(msg, "(WithReplace)", "(--replace)")
	if i := strings.Index(msg, "malformed answer: json: "); i >= 0 {
		// json's words name Go types ("Go struct field … of type …"): say what it means.
		msg = msg[:i] + "an answer that is not what a polyroot server or DTA sends (check the URL)"
	}
	var api *client.APIError
	if errors.As(err, &api) {
		switch api.Code {
		case "unknown_code":
			msg += "; ask the administrator for a new enrolment code"
		case "invalid_token":
			msg += "; log in again for a fresh access token (polyroot client login --print-token)"
		case "rate_limited":
			msg += "; wait and try again"
		}
	}
	return fmt.Errorf("client %s: %s", cmd, msg)
}

func dirFlag() *ucli.StringFlag {
	return &ucli.StringFlag{Name: "dir", Aliases: []string{"d"}, Value: defaultClientDir(), TakesFile: true,
		Usage:   "the client's `DIR`: the pinned trust bundle and the token file (default: polyroot under $XDG_CONFIG_HOME or ~/.config)",
		Sources: ucli.NewValueSourceChain(envVar(envClientDir))}
}

func clientFlags(extra ...ucli.Flag) []ucli.Flag {
	return append([]ucli.Flag{dirFlag(), serverURLFlag(), caFileFlag(), insecureFlag(), insecureDTAFlag()}, extra...)
}

// insecureDTAFlag allows plain http:// DTA URLs outside loopback (client.WithInsecureDTAHTTP).
func insecureDTAFlag() *ucli.BoolFlag {
	return &ucli.BoolFlag{Name: "allow-insecure-dta-http",
		Usage: "accept a trust bundle whose DTA URLs are plain http:// on hosts other than loopback, FOR TEST SET-UPS ONLY (shares cross the network unencrypted)"}
}

// clientOptions builds the library options of the connection flags.
func clientOptions(c *ucli.Command, needServer bool) ([]client.Option, error) {
	if needServer {
		s := c.String("server")
		if s == "" {
			return nil, errors.New("give the auth server's URL with --server (or $POLYROOT_SERVER_URL)")
		}
		if err := checkServerURL(s, c.Bool("insecure-http")); err != nil {
			return nil, err
		}
	}
	hc, err := httpClient(c.String("ca-file"), 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	opts := []client.Option{client.WithServerClient(hc), client.WithDTAClient(hc),
		// In a threshold domain, DTAs that failed while t others sufficed.
		client.WithDTAFaults(func(err error) {
			fmt.Fprintf(c.Root().ErrWriter, "polyroot: warning: done with the other DTAs, but %v\n", err)
		})}
	if c.Bool("insecure-http") {
		opts = append(opts, client.WithInsecureHTTP())
	}
	if c.Bool("allow-insecure-dta-http") {
		opts = append(opts, client.WithInsecureDTAHTTP())
	}
	return opts, nil
}

func needDir(c *ucli.Command) (string, error) {
	d := c.String("dir")
	if d == "" {
		return "", errors.New("give the client directory with --dir (or $" + envClientDir + ")")
	}
	return d, nil
}

const clientErrorsHelp = "On failure it exits with status 1 and a message that names the kind of error and\n" +
	"what to do: wrong PIN (with the tries left), blocked, revoked, permit expired, DTA\n" +
	"unreachable (which), bad share from a DTA (which), server not authentic, possible\n" +
	"interception, trust bundle fingerprint mismatch, not enrolled."

func clientCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "client",
		Usage: "enrol an identity with a domain and log in to its auth server (mutual PIN login)",
		Description: "A client directory (--dir; default polyroot under $XDG_CONFIG_HOME or ~/.config,\n" +
			"or $" + envClientDir + ") holds one domain's pinned trust bundle and one enrolled\n" +
			"identity: its token file (mode 0600) never holds the PIN.\n" +
			"At a terminal the PIN is asked for with echo off (twice at enrolment); scripts give\n" +
			"PINs and access tokens on standard input (--pin-stdin, --token-stdin), never in a\n" +
			"flag. At enrolment the PIN must meet the domain's policy (at least 4 characters\n" +
			"unless its bundle says otherwise). --ca-file trusts a test or enterprise CA;\n" +
			"--insecure-http allows an http:// server on a loopback address, for tests only.\n\n" +
			"Example, from bootstrap to login:\n" +
			"   polyroot client bootstrap --bundle https://auth.example.com/v1/bundle --fingerprint 3a5f…\n" +
			"   printf '%s\\n' \"$PIN\" | polyroot client enroll --server https://auth.example.com --code K7Q… --pin-stdin\n" +
			"   printf '%s\\n' \"$PIN\" | polyroot client login --server https://auth.example.com --pin-stdin\n" +
			"   polyroot client status",
		Commands: []*ucli.Command{
			clientBootstrapCommand(), clientEnrollCommand(), clientLoginCommand(),
			clientPermitsCommand(), clientStatusCommand(),
			clientVerifyIssuanceCommand(),
		},
	}
}

func clientBootstrapCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "bootstrap",
		Usage: "pin a domain's trust bundle by its SHA-256 fingerprint",
		UsageText: "polyroot client bootstrap [--dir DIR] --bundle URL|FILE --fingerprint SHA256\n\n" +
			"Examples:\n" +
			"   polyroot client bootstrap --bundle https://auth.example.com/v1/bundle --fingerprint 3a5f…\n" +
			"   polyroot client bootstrap --dir ~/.config/polyroot/api.example.com --bundle bundle.json --fingerprint sha256:3a5f…\n" +
			"   polyroot client bootstrap --bundle bundle.json --fingerprint 3a5f… --allow-insecure-dta-http   # a test set-up's http DTAs",
		Description: "Reads the trust bundle from an http(s) URL (e.g. the auth server's /v1/bundle) or a\n" +
			"file, checks that its SHA-256 is the fingerprint you got from the domain's operator\n" +
			"over a trusted channel and that the registrar's signature verifies, and stores it\n" +
			"in the client directory (created with mode 0700). Every later command checks the\n" +
			"pinned bundle again. A directory enrolled under another bundle is refused.\n" +
			"A bundle that names a plain http:// DTA URL on a host other than loopback\n" +
			"(127.0.0.0/8, ::1, localhost) is refused, and no share is ever fetched from one:\n" +
			"whoever watches the network would read them. --allow-insecure-dta-http accepts it,\n" +
			"for a test set-up whose DTA traffic stays on a network you trust (the compose\n" +
			"example in deploy/); give it to enroll and permits as well.",
		Flags: []ucli.Flag{
			dirFlag(), caFileFlag(), insecureDTAFlag(),
			&ucli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "the trust bundle's `URL` or FILE", TakesFile: true},
			&ucli.StringFlag{Name: "fingerprint", Aliases: []string{"f"}, Usage: "the bundle's `SHA256` fingerprint in hex (as bundle assemble printed it)"},
			&ucli.BoolFlag{Name: "replace", Usage: "replace another bundle that --dir has pinned (not one it is enrolled under)"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			dir, err := needDir(c)
			if err != nil {
				return fmt.Errorf("client bootstrap: %w", err)
			}
			src, fp := c.String("bundle"), c.String("fingerprint")
			switch {
			case src == "":
				return errors.New("client bootstrap: --bundle is required (a URL or a file)")
			case fp == "":
				return errors.New("client bootstrap: --fingerprint is required (get it from the domain's operator)")
			}
			opts, err := clientOptions(c, false)
			if err != nil {
				return fmt.Errorf("client bootstrap: %w", err)
			}
			if c.Bool("replace") {
				opts = append(opts, client.WithReplace())
			}
			if err := client.Bootstrap(ctx, dir, src, fp, opts...); err != nil {
				return clientError("bootstrap", err)
			}
			cl, err := client.Open(dir)
			if err != nil {
				return clientError("bootstrap", err)
			}
			_, err = fmt.Fprintf(c.Root().Writer, "polyroot: pinned the trust bundle of %s in %s\n", cl.Status().Domain, dir)
			return err
		},
	}
}

func clientEnrollCommand() *ucli.Command {
	return &ucli.Command{
		Name:    "enroll",
		Aliases: []string{"enrol"},
		Usage:   "enrol this client with a one-time code: collect and check the key shares, store the token",
		UsageText: "polyroot client enroll [--dir DIR] --server URL [--pin-stdin | --no-pin]\n\n" +
			"Examples:\n" +
			"   polyroot client enroll --server https://auth.example.com   # at a terminal: asks for the code, then the PIN twice\n" +
			"   read -rs POLYROOT_ENROLMENT_CODE; export POLYROOT_ENROLMENT_CODE\n" +
			"   read -rs PIN; printf '%s\\n' \"$PIN\" | polyroot client enroll --server https://auth.example.com --pin-stdin\n" +
			"   POLYROOT_ENROLMENT_CODE_FILE=… polyroot client enroll --dir /var/lib/sensor/polyroot --server https://auth.example.com --no-pin   # a device",
		Description: "Redeems the one-time code (from polyroot server enrol; read from\n" +
			"$POLYROOT_ENROLMENT_CODE, else asked for at a terminal) at the auth server, fetches\n" +
			"the client key shares and time permits from every DTA in parallel, checks each\n" +
			"share's proof, log entry and promise, combines them, takes the PIN out and stores\n" +
			"the token file (mode 0600). Nothing is stored unless every DTA answered well.\n" +
			"At a terminal the new PIN is asked for twice, with echo off; --pin-stdin reads it\n" +
			"from the first line of standard input instead. It must have at least the bundle's\n" +
			"min_pin_length characters (4 by default), counted after Unicode NFKC normalisation,\n" +
			"and is checked before anything is sent. A device enrolled with --device enrols and\n" +
			"logs in without one (--no-pin).\n" +
			"A directory that holds an enrolment is not replaced unless --replace is given. When\n" +
			"a DTA cannot be reached, run the same command again later: the code stays usable\n" +
			"by this client (and only by it) until it expires.\n\n" + clientErrorsHelp,
		Flags: clientFlags(
			codeFlag(),
			pinFlag(),
			&ucli.BoolFlag{Name: "no-pin", Usage: "device mode: enrol without a PIN (the enrolment must be a --device one)"},
			&ucli.BoolFlag{Name: "replace", Usage: "replace the enrolment that --dir already holds (it is lost)"},
		),
		Action: func(ctx context.Context, c *ucli.Command) error {
			dir, err := needDir(c)
			if err != nil {
				return fmt.Errorf("client enroll: %w", err)
			}
			device := c.Bool("no-pin")
			if device && c.Bool("pin-stdin") {
				return errors.New("client enroll: give either --pin-stdin or --no-pin")
			}
			opts, err := clientOptions(c, true)
			if err != nil {
				return fmt.Errorf("client enroll: %w", err)
			}
			if c.Bool("replace") {
				opts = append(opts, client.WithReplace())
			}
			if cl, err := client.Open(dir, opts...); err == nil && cl.Status().Enrolled && !c.Bool("replace") {
				// Before the PIN prompt: nothing to ask for.
				return clientError("enroll", &client.EnrolledError{ID: cl.Status().ID, Domain: cl.Status().Domain})
			}
			code, err := readEnrolmentCode(c)
			if err != nil {
				return fmt.Errorf("client enroll: %w", err)
			}
			var pin []byte
			if !device {
				if pin, err = readPIN(c, true); err != nil {
					return fmt.Errorf("client enroll: %w (a device enrols with --no-pin)", err)
				}
				defer clear(pin)
			}
			cl, err := client.Open(dir, opts...)
			if err != nil {
				return clientError("enroll", err)
			}
			if err := cl.Enroll(ctx, c.String("server"), code, pin, device); err != nil {
				if errors.Is(err, client.ErrEnrolmentKind) {
					flag := "with --no-pin"
					if device {
						flag = "without --no-pin"
					}
					return fmt.Errorf("client enroll: %w (run this command again %s)", err, flag)
				}
				return clientError("enroll", err)
			}
			st := cl.Status()
			msg := fmt.Sprintf("polyroot: enrolled %q with %s in %s", st.ID, st.Domain, dir)
			if len(st.Permits) > 0 {
				msg += fmt.Sprintf("; permits until %s", st.PermitsUntil.Format(time.RFC3339))
			}
			_, err = fmt.Fprintln(c.Root().Writer, msg)
			return err
		},
	}
}

func clientLoginCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "login",
		Usage: "log in to the auth server with mutual authentication; print who and until when",
		UsageText: "polyroot client login [--dir DIR] --server URL [--pin-stdin] [--print-token]\n\n" +
			"Examples:\n" +
			"   polyroot client login --server https://auth.example.com   # at a terminal: asks for the PIN\n" +
			"   read -rs PIN; printf '%s\\n' \"$PIN\" | polyroot client login --server https://auth.example.com --pin-stdin\n" +
			"   TOKEN=$(printf '%s\\n' \"$PIN\" | polyroot client login --server https://auth.example.com --pin-stdin --print-token)\n" +
			"   polyroot client login --dir /var/lib/sensor/polyroot --server https://auth.example.com   # a device",
		Description: "Proves the token, the PIN and the current time permit to the server, and checks\n" +
			"that the server holds the domain's key and saw the same TLS channel (a TLS-\n" +
			"intercepting proxy makes the login fail). Prints the identity logged in and when\n" +
			"the access token expires; with --print-token, prints only the access token on\n" +
			"stdout (the rest goes to stderr), e.g. for permits refresh --token-stdin.\n" +
			"At a terminal the PIN is asked for with echo off; --pin-stdin reads it from the\n" +
			"first line of standard input instead. Devices log in without one.\n\n" + clientErrorsHelp,
		Flags: clientFlags(
			pinFlag(),
			&ucli.BoolFlag{Name: "print-token", Usage: "print the access token (a secret) on stdout"},
		),
		Action: func(ctx context.Context, c *ucli.Command) error {
			dir, err := needDir(c)
			if err != nil {
				return fmt.Errorf("client login: %w", err)
			}
			opts, err := clientOptions(c, true)
			if err != nil {
				return fmt.Errorf("client login: %w", err)
			}
			cl, err := client.Open(dir, opts...)
			if err != nil {
				return clientError("login", err)
			}
			st := cl.Status()
			pin, err := loginPIN(c, st, "login")
			if err != nil {
				return err
			}
			defer clear(pin)
			s, err := cl.Login(ctx, c.String("server"), pin)
			if err != nil {
				return clientError("login", err)
			}
			msg := fmt.Sprintf("polyroot: logged in to %s as %q; the access token expires at %s (in %s)",
				st.Domain, s.ID, s.ExpiresAt.UTC().Format(time.RFC3339), time.Until(s.ExpiresAt).Round(time.Second))
			if c.Bool("print-token") {
				fmt.Fprintln(c.Root().ErrWriter, msg)
				_, err = fmt.Fprintln(c.Root().Writer, s.AccessToken)
				return err
			}
			_, err = fmt.Fprintln(c.Root().Writer, msg)
			return err
		},
	}
}

// loginPIN reads the PIN for a login or a renewal: from stdin with --pin-stdin,
// none for a device.
func loginPIN(c *ucli.Command, st client.Status, cmd string) ([]byte, error) {
	switch {
	case !st.Enrolled:
		return nil, clientError(cmd, client.ErrNotEnrolled)
	case st.Device && c.Bool("pin-stdin"):
		return nil, fmt.Errorf("client %s: this identity is a device: it logs in without a PIN (drop --pin-stdin)", cmd)
	case st.Device:
		return nil, nil
	}
	pin, err := readPIN(c, false)
	if err != nil {
		return nil, fmt.Errorf("client %s: %w", cmd, err)
	}
	return pin, nil
}

func clientPermitsCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "permits",
		Usage: "manage the client's time permits",
		Description: "A domain with time permits accepts a login only with the permit of the current\n" +
			"period; enroll fetches the first ones. renew fetches more with the PIN (also after\n" +
			"every permit expired); refresh does it with an access token from login.\n\n" +
			"Examples:\n" +
			"   printf '%s\\n' \"$PIN\" | polyroot client permits renew --server https://auth.example.com --pin-stdin --days 7\n" +
			"   printf '%s\\n' \"$TOKEN\" | polyroot client permits refresh --server https://auth.example.com --token-stdin --days 7",
		Commands: []*ucli.Command{clientPermitsRenewCommand(), clientPermitsRefreshCommand()},
	}
}

func clientPermitsRenewCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "renew",
		Usage: "fetch time permits for the coming periods with the PIN, no access token needed",
		UsageText: "polyroot client permits renew [--dir DIR] --server URL [--pin-stdin] [--days N]\n\n" +
			"Examples:\n" +
			"   read -rs PIN; printf '%s\\n' \"$PIN\" | polyroot client permits renew --server https://auth.example.com --pin-stdin --days 7\n" +
			"   polyroot client permits renew --dir /var/lib/sensor/polyroot --server https://auth.example.com   # a device",
		Description: "Runs a renewal with the auth server: the mutual login, proving the token and the\n" +
			"PIN but no permit, so it works after every permit expired. The server must prove\n" +
			"itself and see the same TLS channel, as for login; a wrong PIN counts toward the\n" +
			"lockout. Then it fetches the permit shares for the next N permit periods (0: the\n" +
			"server's default for this identity) from every DTA, checks, combines and stores\n" +
			"them. At a terminal the PIN is asked for with echo off; --pin-stdin reads it from\n" +
			"the first line of standard input instead. Devices renew without one.\n\n" + clientErrorsHelp,
		Flags: clientFlags(
			pinFlag(),
			&ucli.IntFlag{Name: "days", Usage: "permit periods to fetch, from the current one (`N`, at most the enrolment's permit days, which the registrar set; 0: that many)"},
		),
		Action: func(ctx context.Context, c *ucli.Command) error {
			dir, err := needDir(c)
			if err != nil {
				return fmt.Errorf("client permits renew: %w", err)
			}
			if d := c.Int("days"); d < 0 {
				return fmt.Errorf("client permits renew: --days %d: want 0 or more", d)
			}
			opts, err := clientOptions(c, true)
			if err != nil {
				return fmt.Errorf("client permits renew: %w", err)
			}
			cl, err := client.Open(dir, opts...)
			if err != nil {
				return clientError("permits renew", err)
			}
			pin, err := loginPIN(c, cl.Status(), "permits renew")
			if err != nil {
				return err
			}
			defer clear(pin)
			if err := cl.RenewPermits(ctx, c.String("server"), pin, int(c.Int("days"))); err != nil {
				return clientError("permits renew", err)
			}
			_, err = fmt.Fprintln(c.Root().Writer, permitsHeld(cl.Status(), int(c.Int("days"))))
			return err
		},
	}
}

func clientPermitsRefreshCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "refresh",
		Usage: "fetch time permits for the coming periods, with an access token from login",
		UsageText: "polyroot client permits refresh [--dir DIR] --server URL (--token-stdin | --token TOKEN) [--days N]\n\n" +
			"Examples:\n" +
			"   printf '%s\\n' \"$PIN\" | polyroot client login --server https://auth.example.com --pin-stdin --print-token \\\n" +
			"       | polyroot client permits refresh --server https://auth.example.com --token-stdin --days 7",
		Description: "Asks the auth server, with an access token from polyroot client login, for a permit\n" +
			"ticket for the next N permit periods (0: the server's default for this identity),\n" +
			"fetches the permit shares from every DTA, checks and combines them and stores them.\n" +
			"Prefer --token-stdin: a --token on the command line is visible to other local users\n" +
			"(ps). $POLYROOT_ACCESS_TOKEN also works.\n\n" + clientErrorsHelp,
		Flags: clientFlags(
			&ucli.StringFlag{Name: "token", Usage: "the access `TOKEN` (prefer --token-stdin)", Sources: ucli.NewValueSourceChain(envVar("POLYROOT_ACCESS_TOKEN"))},
			&ucli.BoolFlag{Name: "token-stdin", Usage: "read the access token from the first line of standard input"},
			&ucli.IntFlag{Name: "days", Usage: "permit periods to fetch, from the current one (`N`, at most the enrolment's permit days, which the registrar set; 0: that many)"},
		),
		Action: func(ctx context.Context, c *ucli.Command) error {
			dir, err := needDir(c)
			if err != nil {
				return fmt.Errorf("client permits refresh: %w", err)
			}
			token := c.String("token")
			switch {
			case token != "" && c.Bool("token-stdin"):
				return errors.New("client permits refresh: give either --token or --token-stdin")
			case c.Bool("token-stdin"):
				b, err := readSecretLine(c.Root().Reader, "access token")
				if err != nil {
					return fmt.Errorf("client permits refresh: %w", err)
				}
				token = strings.TrimSpace(string(b))
			case token == "":
				return errors.New("client permits refresh: give an access token from polyroot client login with --token-stdin or --token")
			}
			if d := c.Int("days"); d < 0 {
				return fmt.Errorf("client permits refresh: --days %d: want 0 or more", d)
			}
			opts, err := clientOptions(c, true)
			if err != nil {
				return fmt.Errorf("client permits refresh: %w", err)
			}
			cl, err := client.Open(dir, opts...)
			if err != nil {
				return clientError("permits refresh", err)
			}
			if err := cl.RefreshPermits(ctx, c.String("server"), token, int(c.Int("days"))); err != nil {
				return clientError("permits refresh", err)
			}
			_, err = fmt.Fprintln(c.Root().Writer, permitsHeld(cl.Status(), int(c.Int("days"))))
			return err
		},
	}
}

func clientStatusCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "status",
		Usage: "show the client's domain, identity and time permits",
		UsageText: "polyroot client status [--dir DIR] [--json]\n\nExamples:\n   polyroot client status --dir ~/.config/polyroot\n" +
			"   polyroot client status --json | jq -r .permits_until",
		Description: "Checks the pinned trust bundle and the token file again and prints the domain,\n" +
			"the identity, whether it is a device or temporary, and the permits held. It\n" +
			"contacts no server. Exits 1 when the directory has no valid pinned bundle or its\n" +
			"token file is unsafe.\n" +
			"--json prints one object: directory, domain, enrolled, and when enrolled id, idhash,\n" +
			"kind (pin or device), not_after and expired (temporary identities), permits (slot,\n" +
			"from, until), current_permit and permits_until.",
		Flags: []ucli.Flag{dirFlag(), jsonFlag("print a JSON object")},
		Action: func(_ context.Context, c *ucli.Command) error {
			dir, err := needDir(c)
			if err != nil {
				return fmt.Errorf("client status: %w", err)
			}
			cl, err := client.Open(dir)
			if err != nil {
				return clientError("status", err)
			}
			st := cl.Status()
			if c.Bool("json") {
				return writeJSON(c.Root().Writer, clientStatusJSON(dir, st, time.Now()))
			}
			var b strings.Builder
			fmt.Fprintf(&b, "directory: %s\ndomain:    %s\n", dir, st.Domain)
			if !st.Enrolled {
				b.WriteString("enrolled:  no (run polyroot client enroll)\n")
				_, err = io.WriteString(c.Root().Writer, b.String())
				return err
			}
			kind := "person (PIN)"
			if st.Device {
				kind = "device (no PIN)"
			}
			fmt.Fprintf(&b, "enrolled:  yes\nid:        %s\nidhash:    %s\nkind:      %s\n", st.ID, st.IDHash, kind)
			if st.NotAfter != nil {
				state := "valid"
				if !time.Now().Before(*st.NotAfter) {
					state = "EXPIRED: ask the administrator for a new enrolment"
				}
				fmt.Fprintf(&b, "temporary: until %s (%s)\n", st.NotAfter.UTC().Format(time.RFC3339), state)
			}
			switch {
			case len(st.Permits) == 0:
				b.WriteString("permits:   none (the domain has no time permits, or run permits refresh)\n")
			case !st.CurrentPermit:
				fmt.Fprintf(&b, "permits:   %d, none for now: run polyroot client permits refresh\n", len(st.Permits))
			default:
				fmt.Fprintf(&b, "permits:   %d, current one held, until %s\n", len(st.Permits), st.PermitsUntil.Format(time.RFC3339))
			}
			_, err = io.WriteString(c.Root().Writer, b.String())
			return err
		},
	}
}

// statusJSON is the JSON form of client status (--json); the kinds are named as in
// server enrolments.
type statusJSON struct {
	Directory     string       `json:"directory"`
	Domain        string       `json:"domain"`
	Enrolled      bool         `json:"enrolled"`
	ID            string       `json:"id,omitempty"`
	IDHash        string       `json:"idhash,omitempty"`
	Kind          string       `json:"kind,omitempty"` // pin or device
	NotAfter      *time.Time   `json:"not_after,omitempty"`
	Expired       bool         `json:"expired,omitempty"`
	Permits       []permitJSON `json:"permits"`
	CurrentPermit bool         `json:"current_permit"`
	PermitsUntil  *time.Time   `json:"permits_until,omitempty"`
}

type permitJSON struct {
	Slot  uint64    `json:"slot"`
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
}

func clientStatusJSON(dir string, st client.Status, now time.Time) statusJSON {
	out := statusJSON{Directory: dir, Domain: st.Domain, Enrolled: st.Enrolled, Permits: []permitJSON{}}
	if !st.Enrolled {
		return out
	}
	out.ID, out.IDHash, out.Kind, out.CurrentPermit = st.ID, st.IDHash, "pin", st.CurrentPermit
	if st.Device {
		out.Kind = "device"
	}
	if st.NotAfter != nil {
		t := st.NotAfter.UTC()
		out.NotAfter, out.Expired = &t, !now.Before(t)
	}
	for _, p := range st.Permits {
		out.Permits = append(out.Permits, permitJSON{Slot: p.Slot, From: p.From.UTC(), Until: p.Until.UTC()})
	}
	if len(st.Permits) > 0 {
		t := st.PermitsUntil.UTC()
		out.PermitsUntil = &t
	}
	return out
}

// permitsHeld says how many permits st holds, of which period, until when, and that
// the enrolment allows fewer when asked (days) gave more.
func permitsHeld(st client.Status, asked int) string {
	if len(st.Permits) == 0 {
		return "polyroot: no permits held"
	}
	p := st.Permits[0]
	out := fmt.Sprintf("polyroot: %d permits held, one per permit period of %s, until %s", len(st.Permits),
		p.Until.Sub(p.From), st.PermitsUntil.Format(time.RFC3339))
	if asked > len(st.Permits) {
		out += fmt.Sprintf(" (%d asked for: the enrolment allows fewer, as its registrar set)", asked)
	}
	return out
}
