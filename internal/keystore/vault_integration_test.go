//go:build linux

package keystore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/polyroot/polyroot/internal/testbin"
)

// devVault is a real Vault server in dev mode (in memory, unsealed, TLS with a
// generated CA), started by a test and killed when the test ends.
type devVault struct {
	addr      string // https://127.0.0.1:PORT
	rootToken string
	caFile    string
	root      *vault.Client // authenticated with the root token
}

// startDevVault starts a real Vault dev server (testbin.StartVault) and a client
// authenticated with its root token.
func startDevVault(t *testing.T) *devVault {
	t.Helper()
	v := testbin.StartVault(t)
	root, err := newVaultClient(VaultConfig{Address: v.Addr, CAFile: v.CAFile, Token: v.RootToken})
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(v.RootToken)
	return &devVault{addr: v.Addr, rootToken: v.RootToken, caFile: v.CAFile, root: root}
}

// setupAppRole enables AppRole (once), writes a policy that allows only
// secret/data/<path>/*, and returns the role's role_id and a fresh secret_id.
func (dv *devVault) setupAppRole(t *testing.T, role, path, tokenTTL string) (roleID, secretID string) {
	t.Helper()
	ctx := context.Background()
	auths, err := dv.root.Sys().ListAuthWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := auths["approle/"]; !ok {
		if err := dv.root.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
			t.Fatal(err)
		}
	}
	policy := fmt.Sprintf(`path "secret/data/%s/*" { capabilities = ["create", "read", "update"] }`, path)
	if err := dv.root.Sys().PutPolicyWithContext(ctx, role, policy); err != nil {
		t.Fatal(err)
	}
	if _, err := dv.root.Logical().WriteWithContext(ctx, "auth/approle/role/"+role, map[string]any{
		"token_policies": role,
		"token_ttl":      tokenTTL,
		"token_max_ttl":  tokenTTL,
	}); err != nil {
		t.Fatal(err)
	}
	sec, err := dv.root.Logical().ReadWithContext(ctx, "auth/approle/role/"+role+"/role-id")
	if err != nil {
		t.Fatal(err)
	}
	roleID, _ = sec.Data["role_id"].(string)
	sec, err = dv.root.Logical().WriteWithContext(ctx, "auth/approle/role/"+role+"/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	secretID, _ = sec.Data["secret_id"].(string)
	if roleID == "" || secretID == "" {
		t.Fatalf("AppRole set-up returned role_id %q and an empty secret_id? (%v)", roleID, secretID == "")
	}
	return roleID, secretID
}

// rawValue reads the stored KV v2 data of mount/path (optionally a given version)
// with the root token.
func (dv *devVault) rawValue(t *testing.T, path string, version int) (map[string]any, bool) {
	t.Helper()
	var query map[string][]string
	if version > 0 {
		query = map[string][]string{"version": {strconv.Itoa(version)}}
	}
	sec, err := dv.root.Logical().ReadWithDataWithContext(context.Background(), "secret/data/"+path, query)
	if err != nil {
		t.Fatal(err)
	}
	if sec == nil || sec.Data["data"] == nil {
		return nil, false
	}
	return sec.Data["data"].(map[string]any), true
}

func TestVaultDevServer(t *testing.T) {
	start := time.Now()
	dv := startDevVault(t)
	ctx := context.Background()
	cfg := VaultConfig{Address: dv.addr, Path: "polyroot/dta-1", Token: dv.rootToken, CAFile: dv.caFile}
	v, err := NewVault(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("token/delete-every-version", func(t *testing.T) {
		for range 2 {
			if err := v.Put(ctx, "deleted-share", randomSecret(t)); err != nil {
				t.Fatal(err)
			}
		}
		if err := v.Delete(ctx, "deleted-share"); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Get(ctx, "deleted-share"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after Delete: %v", err)
		}
		if _, ok := dv.rawValue(t, "polyroot/dta-1/deleted-share", 1); ok {
			t.Fatal("version 1 is still readable after Delete")
		}
	})

	t.Run("token/round-trip", func(t *testing.T) {
		secret := randomSecret(t)
		if err := v.Put(ctx, "master-share", secret); err != nil {
			t.Fatal(err)
		}
		got, err := v.Get(ctx, "master-share")
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("Get = %x, %v; want %x", got, err, secret)
		}
		// Stored as documented: KV v2 data {"value": base64(secret)} at secret/polyroot/dta-1/master-share.
		data, ok := dv.rawValue(t, "polyroot/dta-1/master-share", 0)
		if !ok || len(data) != 1 || data["value"] != base64.StdEncoding.EncodeToString(secret) {
			t.Fatalf("stored data = %v, want {value: base64(secret)}", data)
		}
	})

	t.Run("token/rotation-writes-new-versions", func(t *testing.T) {
		var versions [][]byte
		for range 3 {
			s := randomSecret(t)
			versions = append(versions, s)
			if err := v.Put(ctx, "rotating", s); err != nil {
				t.Fatal(err)
			}
			got, err := v.Get(ctx, "rotating")
			if err != nil || !bytes.Equal(got, s) {
				t.Fatalf("Get after Put = %x, %v; want the newest %x", got, err, s)
			}
		}
		meta, err := dv.root.Logical().ReadWithContext(ctx, "secret/metadata/polyroot/dta-1/rotating")
		if err != nil {
			t.Fatal(err)
		}
		if cv, _ := meta.Data["current_version"].(json.Number); cv.String() != "3" {
			t.Fatalf("current_version = %v, want 3", meta.Data["current_version"])
		}
		// The old versions are still in Vault (KV v2 keeps them).
		old, ok := dv.rawValue(t, "polyroot/dta-1/rotating", 1)
		if !ok || old["value"] != base64.StdEncoding.EncodeToString(versions[0]) {
			t.Fatalf("version 1 = %v, want the first value", old)
		}
	})

	t.Run("token/not-found", func(t *testing.T) {
		if _, err := v.Get(ctx, "absent"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(absent): %v, want ErrNotFound", err)
		}
		// A secret whose latest version is deleted is not found either.
		if err := v.Put(ctx, "deleted", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := dv.root.Logical().DeleteWithContext(ctx, "secret/data/polyroot/dta-1/deleted"); err != nil {
			t.Fatal(err)
		}
		_, err := v.Get(ctx, "deleted")
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "secret/polyroot/dta-1/deleted") {
			t.Fatalf("Get(deleted): %v, want ErrNotFound naming the path", err)
		}
	})

	t.Run("token/wrong-token", func(t *testing.T) {
		bad := cfg
		bad.Token = "hvs.not-a-valid-token-0123456789"
		vb, err := NewVault(ctx, bad)
		if err != nil {
			t.Fatal(err)
		}
		_, err = vb.Get(ctx, "master-share")
		if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "403") {
			t.Fatalf("Get with a wrong token: %v; want a 403", err)
		}
		assertNoLeak(t, err, []byte(bad.Token), []byte(dv.rootToken))
		if err := vb.Put(ctx, "master-share", []byte("x")); err == nil {
			t.Fatal("Put with a wrong token succeeded")
		}
	})

	t.Run("token/tls-needs-the-ca", func(t *testing.T) {
		t.Setenv("VAULT_SKIP_VERIFY", "true") // ignored, by design
		noCA := cfg
		noCA.CAFile = ""
		vn, err := NewVault(ctx, noCA)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := vn.Get(ctx, "master-share"); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("Get without the CA: %v; want a certificate error", err)
		}
	})

	t.Run("token/errors-never-hold-the-secret", func(t *testing.T) {
		secret := randomSecret(t)
		if err := v.Put(ctx, "leak-check", secret); err != nil {
			t.Fatal(err)
		}
		// Make the stored value malformed under the keystore's feet, keeping the secret inside.
		for _, data := range []map[string]any{
			{"value": "!" + base64.StdEncoding.EncodeToString(secret)},
			{"val": base64.StdEncoding.EncodeToString(secret)},
			{"value": map[string]any{"inner": hex.EncodeToString(secret)}},
		} {
			if _, err := dv.root.Logical().WriteWithContext(ctx, "secret/data/polyroot/dta-1/leak-check", map[string]any{"data": data}); err != nil {
				t.Fatal(err)
			}
			_, err := v.Get(ctx, "leak-check")
			if err == nil {
				t.Fatalf("Get of malformed data %v succeeded", data)
			}
			assertNoLeak(t, err, secret, []byte(dv.rootToken))
		}
	})

	t.Run("approle", func(t *testing.T) {
		roleID, secretID := dv.setupAppRole(t, "dta-1", "polyroot/dta-1", "20m")
		acfg := VaultConfig{Address: dv.addr, Path: "polyroot/dta-1", RoleID: roleID, SecretID: secretID, CAFile: dv.caFile}
		va, err := NewVault(ctx, acfg)
		if err != nil {
			t.Fatal(err)
		}
		secret := randomSecret(t)
		if err := va.Put(ctx, "approle-share", secret); err != nil {
			t.Fatal(err)
		}
		got, err := va.Get(ctx, "approle-share")
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("Get = %x, %v", got, err)
		}
		// It reads what the token client wrote under the same prefix…
		if _, err := va.Get(ctx, "master-share"); err != nil {
			t.Fatalf("Get(master-share) under its own path: %v", err)
		}

		// …but nothing outside its path: the policy refuses, and that is not "not found".
		if err := v.Put(ctx, "x", []byte("dta-1 token write")); err != nil {
			t.Fatal(err)
		}
		other := acfg
		other.Path = "polyroot/dta-2"
		vo, err := NewVault(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		vRoot2, err := NewVault(ctx, VaultConfig{Address: dv.addr, Path: "polyroot/dta-2", Token: dv.rootToken, CAFile: dv.caFile})
		if err != nil {
			t.Fatal(err)
		}
		if err := vRoot2.Put(ctx, "master-share", []byte("dta-2 share")); err != nil {
			t.Fatal(err)
		}
		_, err = vo.Get(ctx, "master-share")
		if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("AppRole Get outside its path: %v; want permission denied", err)
		}
		if !strings.Contains(err.Error(), "keystore: vault read secret/polyroot/dta-2/master-share") {
			t.Errorf("error %q does not name the path", err)
		}
		if err := vo.Put(ctx, "master-share", []byte("overwrite attempt")); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("AppRole Put outside its path: %v; want permission denied", err)
		}
		if got, _ := vRoot2.Get(ctx, "master-share"); string(got) != "dta-2 share" {
			t.Fatalf("dta-2's share changed to %q", got)
		}
		assertNoLeak(t, err, []byte(secretID))

		t.Run("revoked-token-logs-in-again", func(t *testing.T) {
			old := va.client.Token()
			if _, err := dv.root.Logical().WriteWithContext(ctx, "auth/token/revoke", map[string]any{"token": old}); err != nil {
				t.Fatal(err)
			}
			got, err := va.Get(ctx, "approle-share")
			if err != nil || !bytes.Equal(got, secret) {
				t.Fatalf("Get after the token was revoked = %x, %v", got, err)
			}
			if va.client.Token() == old {
				t.Fatal("the keystore kept the revoked token")
			}
		})

		t.Run("wrong-secret-id", func(t *testing.T) {
			bad := acfg
			bad.SecretID = "00000000-1111-2222-3333-444444444444"
			_, err := NewVault(ctx, bad)
			if err == nil || !strings.Contains(err.Error(), "approle login") {
				t.Fatalf("NewVault with a wrong secret_id: %v", err)
			}
			assertNoLeak(t, err, []byte(bad.SecretID), []byte(secretID))
		})

		t.Run("concurrent", func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for i := range 8 {
				wg.Go(func() {
					name := fmt.Sprintf("concurrent-%d", i)
					for j := range 5 {
						s := []byte(fmt.Sprintf("value %d/%d", i, j))
						if err := va.Put(ctx, name, s); err != nil {
							errs <- err
							return
						}
						got, err := va.Get(ctx, name)
						if err != nil || !bytes.Equal(got, s) {
							errs <- fmt.Errorf("Get(%s) = %q, %v; want %q", name, got, err, s)
							return
						}
					}
				})
			}
			// Revoke the token in the middle: every goroutine must recover.
			dv.root.Logical().WriteWithContext(ctx, "auth/token/revoke", map[string]any{"token": va.client.Token()})
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	})

	t.Run("approle/token-expiry", func(t *testing.T) {
		roleID, secretID := dv.setupAppRole(t, "dta-short", "polyroot/dta-1", "1s")
		va, err := NewVault(ctx, VaultConfig{Address: dv.addr, Path: "polyroot/dta-1", RoleID: roleID, SecretID: secretID, CAFile: dv.caFile})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := va.Get(ctx, "master-share"); err != nil {
			t.Fatal(err)
		}
		first := va.client.Token()
		time.Sleep(1100 * time.Millisecond) // past the token's 1 s lifetime
		if _, err := va.Get(ctx, "master-share"); err != nil {
			t.Fatalf("Get after the token expired: %v", err)
		}
		if va.client.Token() == first {
			t.Fatal("the keystore kept the expired token")
		}
	})

	t.Logf("vault integration test: %v in all", time.Since(start).Round(time.Millisecond))
}
