package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/internal/keystore"
)

// Secrets come from the environment only, never from flags (ps shows a process's
// arguments) or from the configuration file.
const (
	envPassphrase    = keystore.PassphraseEnv // POLYROOT_KEYSTORE_PASSPHRASE
	envVaultToken    = "VAULT_TOKEN"
	envVaultSecretID = "VAULT_SECRET_ID"

	// envScryptLogN lowers the scrypt work factor of the file keystore that `dta init`
	// writes. FOR TESTS ONLY: a low factor makes a stolen keystore file cheap to
	// brute-force. The keystore reads files of any factor up to 22 regardless.
	envScryptLogN = "POLYROOT_KEYSTORE_SCRYPT_LOG_N"
)

const keystoreCategory = "Keystore"

// keystoreFlags are the settings of a keystore (see openKeystore); file is the
// command's configuration file, nil for a command without one.
func keystoreFlags(file *configFile) []ucli.Flag {
	str := func(name, env, key, value, usage string) *ucli.StringFlag {
		if file != nil {
			usage += " (config: " + key + ")"
		}
		return &ucli.StringFlag{Name: name, Value: value, Usage: usage, Sources: sources(file, env, key), Category: keystoreCategory}
	}
	return []ucli.Flag{
		str("keystore", "POLYROOT_KEYSTORE_TYPE", "keystore.type", "file",
			"keystore `TYPE` holding the secrets (a DTA's master share and signing key, a server's keys): file (encrypted files, passphrase in $"+envPassphrase+") or vault"),
		str("keystore-dir", "POLYROOT_KEYSTORE_DIR", "keystore.dir", "", "file keystore: its `DIR` (created with mode 0700)"),
		str("vault-addr", "POLYROOT_VAULT_ADDR", "keystore.vault.addr", "", "vault keystore: Vault's `URL` (https; http only on loopback)"),
		str("vault-mount", "POLYROOT_VAULT_MOUNT", "keystore.vault.mount", keystore.DefaultVaultMount, "vault keystore: the KV v2 `MOUNT`"),
		str("vault-path", "POLYROOT_VAULT_PATH", "keystore.vault.path", "", "vault keystore: the `PATH` under the mount for this DTA's or server's secrets, e.g. polyroot/dta-1"),
		str("vault-approle-role-id", "POLYROOT_VAULT_APPROLE_ROLE_ID", "keystore.vault.approle_role_id", "",
			"vault keystore: log in with AppRole with this `ROLE_ID` and the secret id in $"+envVaultSecretID+" (default: the token in $"+envVaultToken+")"),
		str("vault-approle-mount", "POLYROOT_VAULT_APPROLE_MOUNT", "keystore.vault.approle_mount", keystore.DefaultVaultAppRoleMount, "vault keystore: the AppRole auth `MOUNT`"),
		str("vault-ca-file", "POLYROOT_VAULT_CA_FILE", "keystore.vault.ca_file", "", "vault keystore: PEM `FILE` of the CA to trust for Vault (default: the system's)"),
		str("vault-namespace", "POLYROOT_VAULT_NAMESPACE", "keystore.vault.namespace", "", "vault keystore: Vault Enterprise `NAMESPACE`"),
	}
}

// openKeystore opens the keystore the flags describe; the secrets it needs come from
// the environment. It returns the keystore and a description without secrets, for
// messages ("the file keystore /var/lib/…").
func openKeystore(ctx context.Context, c *ucli.Command, warn io.Writer) (keystore.Keystore, string, error) {
	switch typ := c.String("keystore"); typ {
	case "file":
		dir := c.String("keystore-dir")
		if dir == "" {
			return nil, "", fmt.Errorf("the file keystore needs --keystore-dir (or keystore.dir in the config file)")
		}
		p, err := secretEnv(envPassphrase)
		if err != nil {
			return nil, "", err
		}
		if p == "" {
			return nil, "", fmt.Errorf("the file keystore needs its passphrase in the environment variable %s (or a file named by %s_FILE)", envPassphrase, envPassphrase)
		}
		pass := []byte(p)
		var opts []keystore.FileOption
		if v := os.Getenv(envScryptLogN); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, "", fmt.Errorf("%s=%q: not an integer", envScryptLogN, v)
			}
			fmt.Fprintf(warn, "polyroot: warning: %s=%d lowers the keystore's scrypt work factor (default %d): for tests only\n",
				envScryptLogN, n, keystore.DefaultScryptWorkFactor)
			opts = append(opts, keystore.WithScryptWorkFactor(n))
		}
		ks, err := keystore.OpenFile(dir, pass, opts...)
		clear(pass)
		if err != nil {
			return nil, "", err
		}
		// Described in words, not by ks.String(), which is written for logs of Go
		// values ("keystore.File(…)").
		return ks, "the file keystore " + ks.Dir(), nil
	case "vault":
		cfg, err := vaultConfig(c)
		if err != nil {
			return nil, "", err
		}
		ks, err := keystore.NewVault(ctx, cfg)
		if err != nil {
			return nil, "", err
		}
		mount := cfg.Mount
		if mount == "" {
			mount = keystore.DefaultVaultMount
		}
		return ks, fmt.Sprintf("the Vault keystore at %s (%s/%s)", cfg.Address, mount, cfg.Path), nil
	default:
		return nil, "", fmt.Errorf("--keystore %q: want file or vault", typ)
	}
}

// vaultConfig is the Vault keystore the flags describe, with its credential from the
// environment.
func vaultConfig(c *ucli.Command) (keystore.VaultConfig, error) {
	cfg := keystore.VaultConfig{
		Address:      c.String("vault-addr"),
		Mount:        c.String("vault-mount"),
		Path:         c.String("vault-path"),
		AppRoleMount: c.String("vault-approle-mount"),
		CAFile:       c.String("vault-ca-file"),
		Namespace:    c.String("vault-namespace"),
	}
	var err error
	if role := c.String("vault-approle-role-id"); role != "" {
		cfg.RoleID = role
		if cfg.SecretID, err = secretEnv(envVaultSecretID); err == nil && cfg.SecretID == "" {
			err = fmt.Errorf("AppRole login needs the secret id in the environment variable %s (or %s_FILE)", envVaultSecretID, envVaultSecretID)
		}
	} else if cfg.Token, err = secretEnv(envVaultToken); err == nil && cfg.Token == "" {
		err = fmt.Errorf("the vault keystore needs a token in the environment variable %s (or %s_FILE), or --vault-approle-role-id with the secret id in %s",
			envVaultToken, envVaultToken, envVaultSecretID)
	}
	if err != nil {
		return cfg, err
	}
	return cfg, nil
}
