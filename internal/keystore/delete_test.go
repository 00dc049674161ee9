package keystore

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

func TestFileDelete(t *testing.T) {
	ctx := context.Background()
	f := openTestFile(t, keysDir(t))
	if err := f.Put(ctx, "master-share-next", randomSecret(t)); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second Delete finds nothing, and is no error
		if err := f.Delete(ctx, "master-share-next"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Get(ctx, "master-share-next"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after Delete: %v", err)
		}
	}
	if err := f.Delete(ctx, "../escape"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("Delete(../escape) = %v", err)
	}
	if held, err := FileHolds(f.Dir(), "master-share-next"); err != nil || held {
		t.Fatalf("FileHolds after Delete = %v, %v", held, err)
	}
}

func TestVaultDeleteDestroysMetadata(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	v, err := NewVault(context.Background(), VaultConfig{Address: srv.URL, Path: "polyroot/dta-1", Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Delete(context.Background(), "master-share-next"); err != nil {
		t.Fatal(err)
	}
	if err := v.Delete(context.Background(), "a/b"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("Delete(a/b) = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != "DELETE /v1/secret/metadata/polyroot/dta-1/master-share-next" {
		t.Fatalf("requests %v, want one DELETE of the metadata path (every version)", got)
	}
}
