package keystore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// Defaults of VaultConfig.
const (
	DefaultVaultMount        = "secret"
	DefaultVaultAppRoleMount = "approle"
	DefaultVaultTimeout      = 30 * time.Second
)

// vaultValueField is the key of the KV v2 data map that holds base64(secret).
const vaultValueField = "value"

// VaultConfig configures a Vault keystore: HashiCorp Vault's KV version 2 secrets
// engine, one Vault secret per keystore secret at Mount/Path/name, with data
// {"value": base64(secret)}.
//
// Exactly one authentication is given: Token, or AppRole (RoleID and SecretID).
// There is deliberately no option to skip TLS verification: Address must be https,
// except on a loopback address (a Vault agent or a dev server on the same host);
// CAFile adds a private CA. Settings are taken from this struct only: the VAULT_*
// environment variables that the Vault client library reads (VAULT_ADDR,
// VAULT_TOKEN, VAULT_SKIP_VERIFY, VAULT_CACERT, VAULT_NAMESPACE, …) are ignored —
// except that the library still refuses to start on a malformed one and still adds
// VAULT_HEADERS. The usual HTTPS_PROXY and NO_PROXY apply. The String method hides
// Token and SecretID.
type VaultConfig struct {
	// Address is Vault's URL, e.g. https://vault.example.com:8200.
	Address string
	// Mount is the path where the KV v2 engine is mounted (default "secret").
	Mount string
	// Path is the prefix under the mount for this keystore's secrets,
	// e.g. "polyroot/dta-1". It may be empty.
	Path string

	// Token authenticates with a Vault token.
	Token string
	// RoleID and SecretID authenticate with AppRole at AppRoleMount (default
	// "approle"). The keystore logs in when it is created and again when its token
	// expires or is refused.
	RoleID       string
	SecretID     string
	AppRoleMount string

	// CAFile is a PEM file of CA certificates to trust for Address instead of the
	// system roots. Optional.
	CAFile string
	// Namespace is the Vault Enterprise namespace. Optional.
	Namespace string
	// Timeout bounds each HTTP request to Vault (default 30 s).
	Timeout time.Duration
}

// String describes the configuration with its credentials hidden.
func (c VaultConfig) String() string {
	auth := "none"
	switch {
	case c.Token != "":
		auth = "token"
	case c.RoleID != "" || c.SecretID != "":
		auth = "approle(" + c.appRoleMount() + ")"
	}
	return fmt.Sprintf("vault(address=%s mount=%s path=%s auth=%s)", c.Address, c.mount(), c.Path, auth)
}

// GoString is String, so that %#v does not print credentials either.
func (c VaultConfig) GoString() string { return c.String() }

func (c VaultConfig) mount() string {
	if c.Mount == "" {
		return DefaultVaultMount
	}
	return c.Mount
}

func (c VaultConfig) appRoleMount() string {
	if c.AppRoleMount == "" {
		return DefaultVaultAppRoleMount
	}
	return c.AppRoleMount
}

// Validate checks the configuration without contacting Vault.
func (c VaultConfig) Validate() error {
	if c.Address == "" {
		return errors.New("keystore: vault: address is required")
	}
	u, err := url.Parse(c.Address)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the address, which may hold a password
		}
		return fmt.Errorf("keystore: vault: address is not a URL: %w", err)
	}
	if u.User != nil {
		return errors.New("keystore: vault: address must not contain user information")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("keystore: vault: address %q: scheme must be https (or http on loopback), as in https://vault.example.com:8200", c.Address)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("keystore: vault: address %q has no host", c.Address)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("keystore: vault: address %q: plain http is allowed only on a loopback address; use https", c.Address)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("keystore: vault: address %q must be scheme://host[:port] only", c.Address)
	}
	if err := checkVaultPath("mount", c.mount(), false); err != nil {
		return err
	}
	if err := checkVaultPath("path", c.Path, true); err != nil {
		return err
	}
	if err := checkVaultPath("approle mount", c.appRoleMount(), false); err != nil {
		return err
	}
	if c.Namespace != "" {
		if err := checkVaultPath("namespace", c.Namespace, false); err != nil {
			return err
		}
	}
	token, approle := c.Token != "", c.RoleID != "" || c.SecretID != ""
	switch {
	case token && approle:
		return errors.New("keystore: vault: give either a token or an AppRole (role_id, secret_id), not both")
	case !token && !approle:
		return errors.New("keystore: vault: no authentication: give a token or an AppRole (role_id, secret_id)")
	case approle && c.RoleID == "":
		return errors.New("keystore: vault: AppRole role_id is missing")
	case approle && c.SecretID == "":
		return errors.New("keystore: vault: AppRole secret_id is missing")
	}
	if c.Timeout < 0 {
		return errors.New("keystore: vault: negative timeout")
	}
	return nil
}

// checkVaultPath accepts slash-separated segments of [A-Za-z0-9._-], none of them
// empty, "." or "..".
func checkVaultPath(what, p string, mayBeEmpty bool) error {
	if p == "" {
		if mayBeEmpty {
			return nil
		}
		return fmt.Errorf("keystore: vault: %s is empty", what)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("keystore: vault: %s %q: empty, \".\" or \"..\" segment (no leading, trailing or double slash)", what, p)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("keystore: vault: %s %q: allowed characters are A-Z a-z 0-9 . _ - and /", what, p)
			}
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

// Vault is a Keystore on HashiCorp Vault's KV v2 engine. Get reads the latest
// version of a secret; Put writes a new version (older versions stay in Vault, as
// its KV v2 engine keeps them, until its max_versions setting drops them). A Vault is
// safe for concurrent use.
type Vault struct {
	cfg    VaultConfig
	client *vault.Client

	// AppRole only: login is a second client that never holds a token, so that a
	// login never disturbs requests in flight on client; mu serialises logins and
	// guards expires, when the current token should be replaced (zero: never).
	login   *vault.Client
	mu      sync.Mutex
	expires time.Time
}

// NewVault checks cfg, builds a Vault client from it alone (no VAULT_* environment
// variables) and, with AppRole, logs in. It does not otherwise contact Vault: a bad
// token shows at the first Get or Put.
func NewVault(ctx context.Context, cfg VaultConfig) (*Vault, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := newVaultClient(cfg)
	if err != nil {
		return nil, err
	}
	v := &Vault{cfg: cfg, client: client}
	if cfg.Token != "" {
		client.SetToken(cfg.Token)
		return v, nil
	}
	if v.login, err = newVaultClient(cfg); err != nil {
		return nil, err
	}
	if err := v.loginLocked(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

// newVaultClient builds a token-less Vault client from cfg alone.
func newVaultClient(cfg VaultConfig) (*vault.Client, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("keystore: vault: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("keystore: vault: CA file %s holds no PEM certificate", cfg.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConf
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultVaultTimeout
	}
	// Not vault.DefaultConfig(): it reads VAULT_* variables, VAULT_SKIP_VERIFY among them.
	vc := &vault.Config{
		Address: strings.TrimSuffix(cfg.Address, "/"),
		HttpClient: &http.Client{
			Transport: transport,
			// The Vault client follows Vault's redirects (standby → active) itself.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Timeout:    timeout,
		MaxRetries: 2,
	}
	client, err := vault.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("keystore: vault: client: %w", err)
	}
	// NewClient picks up VAULT_TOKEN and VAULT_NAMESPACE; only cfg counts.
	client.ClearToken()
	client.ClearNamespace()
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	return client, nil
}

// String describes the keystore without its credentials.
func (v *Vault) String() string { return "keystore." + v.cfg.String() }

// GoString is String, so that %#v does not print credentials either.
func (v *Vault) GoString() string { return v.String() }

// secretPath is the KV path of name under the mount, without the "data/" infix.
func (v *Vault) secretPath(name string) string {
	if v.cfg.Path == "" {
		return name
	}
	return v.cfg.Path + "/" + name
}

// display is how errors name a secret: mount/path/name, as `vault kv get` does.
func (v *Vault) display(name string) string { return v.cfg.mount() + "/" + v.secretPath(name) }

// apiPath is the HTTP API path of the KV v2 data endpoint of name.
func (v *Vault) apiPath(name string) string {
	return v.cfg.mount() + "/data/" + v.secretPath(name)
}

// Get returns the latest version of the secret name, or an error wrapping
// ErrNotFound if there is none or the latest version is deleted or destroyed.
func (v *Vault) Get(ctx context.Context, name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var sec *vault.Secret
	err := v.do(ctx, func() error {
		var err error
		sec, err = v.client.Logical().ReadWithContext(ctx, v.apiPath(name))
		return compactError(err)
	})
	if err != nil {
		return nil, fmt.Errorf("keystore: vault read %s: %w", v.display(name), err)
	}
	if sec == nil || sec.Data == nil {
		return nil, fmt.Errorf("keystore: vault read %s: %w", v.display(name), ErrNotFound)
	}
	raw, present := sec.Data["data"]
	if !present {
		return nil, fmt.Errorf("keystore: vault read %s: not a KV version 2 secret (is %s a KV v2 mount?)", v.display(name), v.cfg.mount())
	}
	if raw == nil { // the latest version is deleted or destroyed
		return nil, fmt.Errorf("keystore: vault read %s: latest version deleted: %w", v.display(name), ErrNotFound)
	}
	// The messages below never print what was found: it may be a secret.
	data, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("keystore: vault read %s: malformed KV v2 response", v.display(name))
	}
	enc, ok := data[vaultValueField].(string)
	if !ok {
		return nil, fmt.Errorf("keystore: vault read %s: no string field %q (not written by this keystore?)", v.display(name), vaultValueField)
	}
	secret, err := base64.StdEncoding.Strict().DecodeString(enc)
	if err != nil || len(secret) == 0 {
		return nil, fmt.Errorf("keystore: vault read %s: field %q is not non-empty standard base64", v.display(name), vaultValueField)
	}
	return secret, nil
}

// Put writes secret as a new version of name.
func (v *Vault) Put(ctx context.Context, name string, secret []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	if len(secret) == 0 {
		return fmt.Errorf("keystore: vault write %s: empty secret", v.display(name))
	}
	body := map[string]any{"data": map[string]any{vaultValueField: base64.StdEncoding.EncodeToString(secret)}}
	err := v.do(ctx, func() error {
		_, err := v.client.Logical().WriteWithContext(ctx, v.apiPath(name), body)
		return compactError(err)
	})
	if err != nil {
		return fmt.Errorf("keystore: vault write %s: %w", v.display(name), err)
	}
	return nil
}

// Delete destroys every version of name and its metadata (KV v2 DELETE
// metadata/…), so that no earlier version of the secret stays readable. A missing
// secret is not an error. The policy needs the delete capability on the metadata path.
func (v *Vault) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	err := v.do(ctx, func() error {
		_, err := v.client.Logical().DeleteWithContext(ctx, v.cfg.mount()+"/metadata/"+v.secretPath(name))
		return compactError(err)
	})
	if err != nil {
		return fmt.Errorf("keystore: vault delete %s: %w", v.display(name), err)
	}
	return nil
}

// do runs op with a valid token. With AppRole it logs in first if the token has
// expired (or is about to), and once more if Vault refuses the token (403): it may
// have been revoked. A second refusal is returned — it is a policy matter.
func (v *Vault) do(ctx context.Context, op func() error) error {
	if v.login == nil {
		return op()
	}
	v.mu.Lock()
	stale := !v.expires.IsZero() && time.Now().After(v.expires)
	v.mu.Unlock()
	tok := v.client.Token()
	if stale {
		if err := v.relogin(ctx, tok); err != nil {
			return err
		}
		tok = v.client.Token()
	}
	err := op()
	var re *vault.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
		if lerr := v.relogin(ctx, tok); lerr != nil {
			return fmt.Errorf("%w (logging in again failed: %w)", err, lerr)
		}
		err = op()
	}
	return err
}

// relogin logs in again unless another goroutine already replaced the token old.
func (v *Vault) relogin(ctx context.Context, old string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.client.Token() != old {
		return nil
	}
	return v.loginLocked(ctx)
}

// loginLocked performs an AppRole login with the token-less login client and
// installs the new token. v.mu must be held (or v not yet shared).
func (v *Vault) loginLocked(ctx context.Context) error {
	mount := v.cfg.appRoleMount()
	sec, err := v.login.Logical().WriteWithContext(ctx, "auth/"+mount+"/login", map[string]any{
		"role_id":   v.cfg.RoleID,
		"secret_id": v.cfg.SecretID,
	})
	if err != nil {
		return fmt.Errorf("keystore: vault approle login at auth/%s: %w", mount, compactError(err))
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return fmt.Errorf("keystore: vault approle login at auth/%s: no token in the response", mount)
	}
	v.client.SetToken(sec.Auth.ClientToken)
	v.expires = time.Time{}
	if ttl := time.Duration(sec.Auth.LeaseDuration) * time.Second; ttl > 0 {
		// Log in again once 80% of the lifetime has passed.
		v.expires = time.Now().Add(ttl * 4 / 5)
	}
	return nil
}

// responseError is a *vault.ResponseError in one line, for logs: the status and
// Vault's messages, without the URL (the caller names the secret) and without a
// body that is not Vault's JSON (a proxy's page, which might even echo the request).
// errors.As still finds the *vault.ResponseError.
type responseError struct{ re *vault.ResponseError }

func (e responseError) Error() string {
	if e.re.RawError {
		return fmt.Sprintf("HTTP %d (%s; non-JSON response body not shown)", e.re.StatusCode, http.StatusText(e.re.StatusCode))
	}
	msg := strings.Join(strings.Fields(strings.Join(e.re.Errors, "; ")), " ")
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	if msg == "" {
		msg = http.StatusText(e.re.StatusCode)
	}
	return fmt.Sprintf("HTTP %d: %s", e.re.StatusCode, msg)
}

func (e responseError) Unwrap() error { return e.re }

// compactError replaces err by its one-line form if it is a *vault.ResponseError
// (as the Vault client returns them).
func compactError(err error) error {
	if re, ok := err.(*vault.ResponseError); ok {
		return responseError{re}
	}
	return err
}
