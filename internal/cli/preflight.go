package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/dtacmd"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/internal/servercmd"
	"github.com/polyroot/polyroot/server"
)

// Checks a serve command makes before it starts, and what --check-config checks.
//
// A DTA or auth server that finds its data directory or port taken used to say so
// only after the keystore's passphrase had been through scrypt (seconds), and then in
// the words of bbolt ("timeout") or of the socket ("bind: address already in use").
// busyError says it first, in the same words for both services.

// The state databases, as dta and server name them in their data directories.
const (
	dtaStateDB    = "state.db"
	serverStateDB = "server.db"
)

// configCheckFlags are the flags that show a serve command's settings without
// starting it; setup names the command that puts the keys in the keystore.
func configCheckFlags(setup string) []ucli.Flag {
	return []ucli.Flag{
		&ucli.BoolFlag{Name: "check-config", Usage: "print the resolved settings as TOML (no secrets), check them against the files and " +
			"services they name (the trust bundle, the keystore's keys from " + setup + ", the data directory, the TLS files, the ports), " +
			"and exit without starting: 1 if serve would not start"},
		&ucli.BoolFlag{Name: "print-config", Usage: "print the resolved settings as TOML (no secrets) and exit without starting or checking them"},
	}
}

// listenSetting is a listen address and the flag that sets it.
type listenSetting struct{ flag, addr string }

// busyError returns an error when the data directory's database is locked by another
// process or a listen address is taken; nil when all is free (or cannot be told).
func busyError(dataDir, db string, listens ...listenSetting) error {
	if err := dataDirBusy(dataDir, db); err != nil {
		return err
	}
	for _, l := range listens {
		if err := listenBusy(l.flag, l.addr); err != nil {
			return err
		}
	}
	return nil
}

// dataDirBusy is the error for a data directory whose database another process holds.
func dataDirBusy(dataDir, db string) error {
	if held, _ := lockHeld(filepath.Join(dataDir, db)); held {
		return fmt.Errorf("the data directory %s is in use by another process (is the service already running on it?); stop it or choose another --data-dir", dataDir)
	}
	return nil
}

// listenBusy is the error for an address where the service could not listen: taken by
// another process, or not this host's. Port 0 (any free port) is never busy.
func listenBusy(flag, addr string) error {
	if addr == "" {
		return nil
	}
	if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l.Close()
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%s is in use: another process listens there; choose another --%s", addr, flag)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("cannot listen on %s: permission denied (ports below 1024 need privileges); choose another --%s", addr, flag)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("cannot listen on %s: the address is not one of this host's; choose another --%s", addr, flag)
	}
	return fmt.Errorf("cannot listen on %s (--%s): %w", addr, flag, err)
}

// configCheck collects what --check-config finds: problems (serve would fail) and
// notes (serve would fail now, but the setting may be right: a port taken by the
// service itself, a secret not in this shell's environment).
type configCheck struct {
	problems, notes, ok []string
}

func (k *configCheck) fail(format string, a ...any) {
	k.problems = append(k.problems, fmt.Sprintf(format, a...))
}
func (k *configCheck) note(format string, a ...any) {
	k.notes = append(k.notes, fmt.Sprintf(format, a...))
}
func (k *configCheck) good(format string, a ...any) { k.ok = append(k.ok, fmt.Sprintf(format, a...)) }

// report writes the notes and what checked out to w (standard error: standard output
// holds the settings as TOML) and returns an error listing the problems.
func (k *configCheck) report(w io.Writer, cmd string) error {
	for _, n := range k.notes {
		fmt.Fprintf(w, "polyroot: note: %s\n", n)
	}
	if len(k.problems) > 0 {
		what := "problem"
		if len(k.problems) > 1 {
			what = "problems"
		}
		return fmt.Errorf("%s --check-config: %d %s: serve would not start:\n  %s", cmd, len(k.problems), what, strings.Join(k.problems, "\n  "))
	}
	_, err := fmt.Fprintf(w, "polyroot: %s --check-config: the settings check out: %s\n", cmd, strings.Join(k.ok, "; "))
	return err
}

// checkBundle reads the trust bundle file; nil if it is missing or invalid.
func (k *configCheck) checkBundle(path string) (*bundle.Bundle, string) {
	b, fp, err := dtacmd.ReadBundle(path)
	if err != nil {
		k.fail("%v", err)
		return nil, ""
	}
	return b, fp
}

// checkTLS loads the certificate and key, as serve does.
func (k *configCheck) checkTLS(cert, key string) {
	if cert == "" {
		return
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		k.fail("TLS certificate %s with key %s: %v", cert, key, err)
		return
	}
	k.good("TLS certificate %s", cert)
}

// checkDataDir checks that the service can use dir (it creates a missing one) and
// notes when another process holds its database.
func (k *configCheck) checkDataDir(dir, db string) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		parent := filepath.Dir(filepath.Clean(dir))
		for {
			if _, err := os.Stat(parent); err == nil || filepath.Dir(parent) == parent {
				break
			}
			parent = filepath.Dir(parent)
		}
		if !writable(parent) {
			k.fail("the data directory %s does not exist and cannot be created: %s is not writable", dir, parent)
			return
		}
		k.good("data directory %s (created on first start)", dir)
		return
	case err != nil:
		k.fail("the data directory %s: %v", dir, err)
		return
	case !fi.IsDir():
		k.fail("the data directory %s is not a directory", dir)
		return
	case !writable(dir):
		k.fail("the data directory %s is not writable", dir)
		return
	}
	if err := dataDirBusy(dir, db); err != nil {
		k.note("%v", err)
	}
	k.good("data directory %s", dir)
}

// writable reports whether this process may create files in dir.
func writable(dir string) bool {
	f, err := os.CreateTemp(dir, ".polyroot-check-*")
	if err != nil {
		return false
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return true
}

// checkListen notes a listen address that another process holds (it may be this
// service, running with the config being checked).
func (k *configCheck) checkListen(flag, addr string) {
	if err := listenBusy(flag, addr); err != nil {
		k.note("%v", err)
	}
}

// checkKeystore checks, without the passphrase or a Vault login, that the keystore
// can be reached and that a file keystore holds the secrets serve needs (remedy says
// how they get there).
func (k *configCheck) checkKeystore(ctx context.Context, c *ucli.Command, remedy string, names ...string) {
	switch c.String("keystore") {
	case "file":
		dir := c.String("keystore-dir")
		var missing []string
		for _, n := range names {
			ok, err := keystore.FileHolds(dir, n)
			if err != nil {
				k.fail("the file keystore %s: %v", dir, strings.TrimPrefix(err.Error(), "keystore: "))
				return
			}
			if !ok {
				missing = append(missing, fmt.Sprintf("%q", n))
			}
		}
		if len(missing) > 0 {
			k.fail("the file keystore %s holds no %s: %s", dir, strings.Join(missing, " or "), remedy)
			return
		}
		k.good("file keystore %s holds %s", dir, strings.Join(names, ", "))
		if v, _ := secretEnv(envPassphrase); v == "" {
			k.note("%s is not set in this environment: serve needs the keystore's passphrase there (or in a file named by %s_FILE)", envPassphrase, envPassphrase)
		}
	case "vault":
		addr := c.String("vault-addr")
		if err := vaultHealth(ctx, addr, c.String("vault-ca-file")); err != nil {
			k.fail("the vault keystore at %s: %v", addr, err)
			return
		}
		k.good("Vault at %s answers, unsealed (the secrets are checked at start)", addr)
	}
}

// vaultHealth asks Vault's unauthenticated health endpoint whether it is initialised
// and unsealed.
func vaultHealth(ctx context.Context, addr, caFile string) error {
	hc, err := httpClient(caFile, 5*time.Second)
	if err != nil {
		return fmt.Errorf("--vault-ca-file: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(addr, "/")+"/v1/sys/health?standbyok=true&perfstandbyok=true", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return transportError(err, "--vault-ca-file")
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusTooManyRequests, 472, 473:
		return nil
	case http.StatusNotImplemented:
		return errors.New("the Vault server is not initialised")
	case http.StatusServiceUnavailable:
		return errors.New("the Vault server is sealed: unseal it first")
	}
	return fmt.Errorf("the Vault server's health check answered %s", resp.Status)
}

// checkDTAConfig checks dta serve's settings s against the files and services they
// name: what would otherwise fail only at start.
func checkDTAConfig(ctx context.Context, c *ucli.Command, s *fileConfig) *configCheck {
	k := &configCheck{}
	if b, fp := k.checkBundle(s.Bundle); b != nil {
		if _, ok := b.Find(s.Index); !ok {
			k.fail("the trust bundle %s (domain %s) lists DTA %s, not DTA %d: check --index and --bundle", s.Bundle, b.Domain, dtacmd.Indices(b), s.Index)
		} else {
			k.good("DTA %d of %s in the trust bundle %s (fingerprint %s)", s.Index, b.Domain, s.Bundle, fp)
		}
	}
	k.checkKeystore(ctx, c, "create them with polyroot dta init", dta.SecretMasterShare, dta.SecretSigningKey)
	k.checkDataDir(s.DataDir, dtaStateDB)
	k.checkTLS(s.TLS.Cert, s.TLS.Key)
	if s.Chain.Type == "rpc" {
		if f, err := os.Open(s.Chain.KeyFile); err != nil {
			k.fail("the chain key file: %v", err)
		} else {
			f.Close()
		}
	}
	k.checkListen("listen", s.Listen)
	if m, _ := checkMetricsListen("dta serve", s.Listen, s.MetricsListen); m != "" {
		k.checkListen("metrics-listen", m)
	}
	return k
}

// checkServerConfig checks server serve's settings s against the files and services
// they name.
func checkServerConfig(ctx context.Context, c *ucli.Command, s *serverFileConfig) *configCheck {
	k := &configCheck{}
	b, fp := k.checkBundle(s.Bundle)
	if b != nil {
		k.good("the trust bundle %s of %s (fingerprint %s)", s.Bundle, b.Domain, fp)
	}
	secrets := []string{server.SecretServerKey}
	if s.RegistrarKey == "" {
		secrets = append(secrets, servercmd.SecretRegistrarKey) // checked against the bundle at start
	} else if priv, err := readRegistrarKey(s.RegistrarKey); err != nil {
		k.fail("%v", err)
	} else if b != nil && !priv.Public().(ed25519.PublicKey).Equal(b.RegistrarPublicKey()) {
		k.fail("the registrar key %s is not the one that signed the trust bundle %s (registrar %s)", s.RegistrarKey, s.Bundle, b.RegistrarKey)
	}
	if s.DTACAFile != "" {
		if _, err := httpClient(s.DTACAFile, 0); err != nil {
			k.fail("--dta-ca-file: %v", err)
		}
	}
	k.checkKeystore(ctx, c, "provision the server key with polyroot server provision", secrets...)
	k.checkDataDir(s.DataDir, serverStateDB)
	k.checkTLS(s.TLS.Cert, s.TLS.Key)
	if v, _ := secretEnv(envAdminToken); v == "" {
		k.note("%s is not set in this environment: serve needs the admin token there (or in a file named by %s_FILE)", envAdminToken, envAdminToken)
	}
	k.checkListen("listen", s.Listen)
	if m, _ := checkMetricsListen("server serve", s.Listen, s.MetricsListen); m != "" {
		k.checkListen("metrics-listen", m)
	}
	o, err := oidcSettings(s.OIDC)
	if err == nil {
		err = server.CheckOIDC(o, s.Login.RefuseUnbound)
	}
	switch {
	case err != nil:
		k.fail("%v", err)
	case o.Issuer != "":
		k.good("the OpenID Provider %s, with %d relying parties", o.Issuer, len(o.Clients))
	}
	return k
}
