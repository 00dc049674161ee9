package keystore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// vaultAnswer is a Vault (or whatever answers at its address) that answers every
// request with the status and body last set: one loopback server for the whole fuzz
// run, each input changing only what it answers.
type vaultAnswer struct {
	mu     sync.Mutex
	status int
	body   []byte
}

func (a *vaultAnswer) set(status int, body []byte) {
	a.mu.Lock()
	a.status, a.body = status, body
	a.mu.Unlock()
}

func (a *vaultAnswer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	a.mu.Lock()
	status, body := a.status, a.body
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// fuzzVaultStatuses are the statuses a fuzzed answer comes with. Not 5xx or 429,
// which the Vault client retries after a back-off (seconds per input, no other code).
var fuzzVaultStatuses = []int{http.StatusOK, http.StatusNoContent, http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound}

// kvValue is the field value of a KV v2 answer's data.data, if the answer has one
// that is a string: the secret Get must return (decoded), or never show.
func kvValue(body []byte) (string, bool) {
	var a struct {
		Data struct {
			Data map[string]any `json:"data"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &a) != nil {
		return "", false
	}
	v, ok := a.Data.Data[vaultValueField].(string)
	return v, ok
}

// FuzzVaultGet: whatever Vault (or a proxy in its place) answers to the read of a
// secret, Get returns an error that names the secret and never shows the value it
// found, or the secret that the answer's data.data.value holds in strict standard
// base64, from a 2xx answer or a 404 (which the Vault client reads as a secret too:
// Vault answers a deleted latest version so).
func FuzzVaultGet(f *testing.F) {
	fake := &vaultAnswer{}
	srv := httptest.NewServer(fake)
	f.Cleanup(srv.Close)
	v, err := NewVault(context.Background(), VaultConfig{Address: srv.URL, Path: "polyroot/dta-1", Token: testToken})
	if err != nil {
		f.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString([]byte("printable-master-share-0123456789"))
	meta := `"metadata":{"version":3,"created_time":"2026-01-01T00:00:00Z","deletion_time":"","destroyed":false}`
	for _, c := range []struct {
		status uint8 // index into fuzzVaultStatuses
		body   string
	}{
		{0, `{"data":{"data":{"value":"` + b64 + `"},` + meta + `}}`},
		{4, `{"data":{"data":null,"metadata":{"version":2,"created_time":"2026-01-01T00:00:00Z","deletion_time":"2026-01-02T00:00:00Z","destroyed":false}}}`},
		{4, `{"errors":[]}`},
		{0, `{"data":{"data":{"other":"` + b64 + `"},` + meta + `}}`},
		{0, `{"data":{"data":{"value":"` + b64 + `!"},` + meta + `}}`},
		{0, `{"data":{"data":{"value":["` + b64 + `"]},` + meta + `}}`},
		{0, `{"data":{"data":"` + b64 + `",` + meta + `}}`},
		{0, `{"data":{"value":"` + b64 + `"}}`},
		{3, `{"errors":["permission denied"]}`},
		{2, `<html>bad request</html>`},
		{1, ``},
		{0, `{"data":{"data":{"value":""}}}`},
		{0, `null`},
	} {
		f.Add(c.status, []byte(c.body))
	}
	const name = "present"
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, status uint8, body []byte) {
		code := fuzzVaultStatuses[int(status)%len(fuzzVaultStatuses)]
		fake.set(code, body)
		secret, err := v.Get(ctx, name)
		value, hasValue := kvValue(body)
		if err != nil {
			if secret != nil {
				t.Fatal("an error and a secret")
			}
			if !strings.HasPrefix(err.Error(), "keystore: vault read secret/polyroot/dta-1/"+name+": ") {
				t.Fatalf("an error that does not name the secret: %v", err)
			}
			if hasValue && len(value) >= 8 && strings.Contains(err.Error(), value) {
				t.Fatalf("an error that shows the value found: %v", err)
			}
			return
		}
		if code/100 != 2 && code != http.StatusNotFound {
			t.Fatalf("a secret from a %d answer", code)
		}
		want, derr := base64.StdEncoding.Strict().DecodeString(value)
		if !hasValue || derr != nil || len(want) == 0 || !bytes.Equal(secret, want) {
			t.Fatalf("Get = %q from an answer whose value is %q", secret, value)
		}
	})
}
