package cli

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/internal/oidcop"
	"github.com/polyroot/polyroot/server"
)

// The auth server as an OpenID Provider: the [oidc] table of its config file, the
// flags that choose the issuer and the browser client, and `server oidc-client`.

// oidcFileConfig is the [oidc] table.
type oidcFileConfig struct {
	Issuer  string             `toml:"issuer"`
	Clients []oidcClientConfig `toml:"clients"`
}

// oidcClientConfig is one [[oidc.clients]] table: a relying party.
type oidcClientConfig struct {
	ID                     string   `toml:"id"`
	AuthMethod             string   `toml:"auth_method"`
	SecretSHA256           string   `toml:"secret_sha256"`
	JWKSFile               string   `toml:"jwks_file"` // relative to the config file
	RedirectURIs           []string `toml:"redirect_uris"`
	PostLogoutRedirectURIs []string `toml:"post_logout_redirect_uris"`
}

// webFlags are server serve's flags of the login page and the OpenID Provider.
func webFlags(file *configFile) []ucli.Flag {
	str, _ := flagMakers(file)
	return []ucli.Flag{
		str("web-dir", "POLYROOT_SERVER_WEB_DIR", "web_dir", "", "Web",
			"`DIR` holding the browser client (polyroot.wasm and wasm_exec.js, from `make build`) for the login page at /login; "+
				"default: the directory of the polyroot executable", true),
		str("oidc-issuer", "POLYROOT_SERVER_OIDC_ISSUER", "oidc.issuer", "", "Web",
			"be an OpenID Provider with this issuer `URL`: the server's public URL with a path, e.g. https://auth.example.com/oidc "+
				"(relying parties: [[oidc.clients]] in the config file; `polyroot server oidc-client` makes one)", false),
	}
}

// webDir is --web-dir, or exeDir.
func webDir(c *ucli.Command) string {
	if d := c.String("web-dir"); d != "" {
		return d
	}
	return exeDir()
}

// exeDir is the directory of the running executable, where `make build` puts the
// browser client beside it.
func exeDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	return filepath.Dir(exe)
}

// oidcFileSettings is the [oidc] settings in use: --oidc-issuer, and the file's
// clients, their jwks_file made absolute (it is relative to the config file).
func oidcFileSettings(c *ucli.Command, file *configFile) oidcFileConfig {
	o := oidcFileConfig{Issuer: c.String("oidc-issuer")}
	if fc, _ := file.typed.(*serverFileConfig); fc != nil {
		o.Clients = slices.Clone(fc.OIDC.Clients)
		for i, cc := range o.Clients {
			if cc.JWKSFile != "" && !filepath.IsAbs(cc.JWKSFile) {
				o.Clients[i].JWKSFile = filepath.Join(file.dir, cc.JWKSFile)
			}
		}
	}
	return o
}

// oidcSettings makes the provider's configuration from the [oidc] settings, reading
// the clients' JWKS files.
func oidcSettings(fo oidcFileConfig) (server.OIDCConfig, error) {
	o := server.OIDCConfig{Issuer: fo.Issuer}
	if o.Issuer != "" {
		u, err := url.Parse(o.Issuer)
		if err != nil {
			return o, fmt.Errorf("--oidc-issuer: %w", err)
		}
		// Plain HTTP only where nobody else can listen: a loopback issuer (the devnet).
		o.AllowInsecure = u.Scheme == "http" && isLoopbackHost(u.Hostname())
	}
	for _, cc := range fo.Clients {
		cl := oidcop.Client{ID: cc.ID, AuthMethod: cc.AuthMethod, SecretSHA256: cc.SecretSHA256,
			RedirectURIs: cc.RedirectURIs, PostLogoutRedirectURIs: cc.PostLogoutRedirectURIs}
		if cc.JWKSFile != "" {
			b, err := os.ReadFile(cc.JWKSFile)
			if err != nil {
				return o, fmt.Errorf("oidc client %q: jwks_file: %w", cc.ID, err)
			}
			cl.JWKS = b
		}
		o.Clients = append(o.Clients, cl)
	}
	return o, nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func serverOIDCClientCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "oidc-client",
		Usage: "register a relying party with the OpenID Provider: make its client secret and print its [[oidc.clients]] table",
		UsageText: "polyroot server oidc-client --redirect-uri URI [--redirect-uri URI…] [--public] CLIENT-ID\n\n" +
			"Examples:\n" +
			"   polyroot server oidc-client --redirect-uri https://shop.example.com/callback shop >> server.toml\n" +
			"   polyroot server oidc-client --public --redirect-uri https://app.example.com/cb spa",
		Description: "Prints a TOML [[oidc.clients]] table to append to the auth server's config file, and\n" +
			"(on stderr) the client secret, once: give it to the relying party. The file keeps only\n" +
			"the secret's SHA-256, so a copy of the config does not let anyone act as the client.\n" +
			"--public registers a client without a secret (a single-page app, or a native app\n" +
			"redirected to a claimed https URL; PKCE, which the provider requires of every\n" +
			"client, then protects its codes). Redirect URIs are https (http only for a\n" +
			"provider served over plain HTTP on loopback): no loopback or private-scheme\n" +
			"redirects. For\n" +
			"private_key_jwt, write the table by hand with auth_method = \"private_key_jwt\" and\n" +
			"jwks_file naming the client's public JWKS. Restart (or start) `server serve` with\n" +
			"--oidc-issuer for the provider to serve it.",
		Flags: []ucli.Flag{
			&ucli.StringSliceFlag{Name: "redirect-uri", Usage: "a redirect `URI` of the client (exact; repeat for more)", Required: true},
			&ucli.BoolFlag{Name: "public", Usage: "a public client (no secret; auth_method none)"},
		},
		Action: func(_ context.Context, c *ucli.Command) error {
			if c.NArg() != 1 || c.Args().First() == "" {
				return errors.New("server oidc-client: give one CLIENT-ID (see --help)")
			}
			id := c.Args().First()
			cl := oidcop.Client{ID: id, AuthMethod: oidcop.AuthNone, RedirectURIs: c.StringSlice("redirect-uri")}
			var secret string
			if !c.Bool("public") {
				var b [32]byte
				rand.Read(b[:])
				secret = hex.EncodeToString(b[:])
				sum := sha256.Sum256([]byte(secret))
				cl.AuthMethod, cl.SecretSHA256 = oidcop.AuthSecretBasic, hex.EncodeToString(sum[:])
			}
			if err := oidcop.CheckClient(cl); err != nil {
				return fmt.Errorf("server oidc-client: %w", err)
			}
			quoted := make([]string, len(cl.RedirectURIs))
			for i, u := range cl.RedirectURIs {
				quoted[i] = strconv.Quote(u)
			}
			fmt.Fprintf(c.Root().Writer, "\n[[oidc.clients]]\nid = %s\nauth_method = %q\n", strconv.Quote(id), cl.AuthMethod)
			if secret != "" {
				fmt.Fprintf(c.Root().Writer, "secret_sha256 = %q\n", cl.SecretSHA256)
			}
			fmt.Fprintf(c.Root().Writer, "redirect_uris = [%s]\n", strings.Join(quoted, ", "))
			if secret != "" {
				fmt.Fprintf(c.Root().ErrWriter, "polyroot: client secret of %q (shown once; give it to the relying party): %s\n", id, secret)
			}
			return nil
		},
	}
}
