package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/polyroot/polyroot/server/middleware"
)

// memStorage is a Storage in memory, as a browser's would be.
type memStorage struct {
	mu    sync.Mutex
	files map[string][]byte
}

func newMemStorage() *memStorage { return &memStorage{files: map[string][]byte{}} }

func (m *memStorage) Load(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[name]
	if !ok {
		return nil, fmt.Errorf("memStorage: %s: %w", name, fs.ErrNotExist)
	}
	return slices.Clone(b), nil
}

func (m *memStorage) Store(name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[name] = slices.Clone(data)
	return nil
}

func (m *memStorage) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.files, name)
	return nil
}

func (m *memStorage) names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.files))
}

// TestStorageMemory enrols and logs in with the client's files in memory: Bootstrap,
// Enroll, Login and RefreshPermits need no directory.
func TestStorageMemory(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	st := newMemStorage()
	if _, err := OpenStorage(st); err == nil {
		t.Fatal("an empty storage opened")
	}
	if err := BootstrapStorage(ctx, st, e.d.WriteBundle(t.TempDir()), e.d.Fingerprint); err != nil {
		t.Fatal(err)
	}
	opts := []Option{WithServerClient(e.serverHTTP()), WithDTAClient(e.dtaHTTP), WithNow(e.serverNow)}
	c, err := OpenStorage(st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Status(); s.Enrolled || s.Domain != testDomainName {
		t.Fatalf("status before enrolment %+v", s)
	}
	pin := []byte("4921")
	if err := c.Enroll(ctx, e.url, e.enrolment(t, "mia@example.com", false), pin, false); err != nil {
		t.Fatal(err)
	}
	if got, want := st.names(), []string{BundleFile, FingerprintFile, TokenFile}; !slices.Equal(got, want) {
		t.Fatalf("storage holds %v, want %v", got, want)
	}
	// A fresh client reads everything back from the storage.
	c, err = OpenStorage(st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Status(); !s.Enrolled || s.ID != "mia@example.com" || !s.CurrentPermit {
		t.Fatalf("status %+v", s)
	}
	s, err := c.Login(ctx, e.url, pin)
	if err != nil {
		t.Fatal(err)
	}
	if claims := e.verifyToken(t, s.AccessToken); claims.Subject != "mia@example.com" {
		t.Fatalf("claims %+v", claims)
	}
	before := c.Status().PermitsUntil
	// An hour later (one permit period, by the server's and the client's clock) a
	// refresh reaches one period further: the enrolment's permit days (3) from the new
	// current period.
	e.clock.Store(int64(time.Hour))
	if s, err = c.Login(ctx, e.url, pin); err != nil { // the access token has expired
		t.Fatal(err)
	}
	if err := c.RefreshPermits(ctx, e.url, s.AccessToken, 5); err != nil {
		t.Fatal(err)
	}
	if after := c.Status().PermitsUntil; !after.After(before) {
		t.Fatalf("permits until %v, before the refresh %v", after, before)
	}
	// A second bootstrap with another fingerprint is refused, as in a directory.
	if err := BootstrapStorage(ctx, st, e.d.WriteBundle(t.TempDir()), "00"+e.d.Fingerprint[2:]); !errors.Is(err, ErrBundleFingerprint) {
		t.Fatalf("bootstrap with a wrong fingerprint: %v", err)
	}
}

// TestStorageErrors: a storage that fails makes Open and Enroll fail with its error,
// and nothing is half written.
func TestStorageErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	st := newMemStorage()
	if err := BootstrapStorage(ctx, st, e.d.WriteBundle(t.TempDir()), e.d.Fingerprint); err != nil {
		t.Fatal(err)
	}
	broken := &failingStorage{Storage: st, fail: TokenFile}
	c, err := OpenStorage(broken, WithServerClient(e.serverHTTP()), WithDTAClient(e.dtaHTTP))
	if err == nil || !errors.Is(err, errStorage) {
		t.Fatalf("open with a failing token load: %v, %v", c, err)
	}
	broken.fail = ""
	broken.failStore = TokenFile
	c, err = OpenStorage(broken, WithServerClient(e.serverHTTP()), WithDTAClient(e.dtaHTTP))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Enroll(ctx, e.url, e.enrolment(t, "noel@example.com", false), []byte("4921"), false); !errors.Is(err, errStorage) {
		t.Fatalf("enrol with a failing store: %v", err)
	}
	if c.Status().Enrolled {
		t.Fatal("enrolled although the token could not be stored")
	}
}

var errStorage = errors.New("storage broken")

// failingStorage fails loads of fail and stores of failStore.
type failingStorage struct {
	Storage
	fail, failStore string
}

func (f *failingStorage) Load(name string) ([]byte, error) {
	if name == f.fail {
		return nil, errStorage
	}
	return f.Storage.Load(name)
}

func (f *failingStorage) Store(name string, data []byte) error {
	if name == f.failStore {
		return errStorage
	}
	return f.Storage.Store(name, data)
}

// TestLoginUnbound: WithoutChannelBinding logs in and renews permits without the TLS
// exporter (wire.StartRequest.Unbound); the access token's amr then lacks "tls-cb",
// which a channel-bound login's has. This needs the server's side of issue 15
// (server/login.go honouring Unbound).
func TestLoginUnbound(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pin := []byte("4921")
	e.enroll(t, "ulla@example.com", pin)

	bound, err := e.open(t).Login(ctx, e.url, pin)
	if err != nil {
		t.Fatal(err)
	}
	if amr := e.verifyToken(t, bound.AccessToken).AMR; !slices.Contains(amr, middleware.MethodChannelBound) {
		t.Fatalf("a channel-bound login's amr %v lacks %q", amr, middleware.MethodChannelBound)
	}

	c := e.open(t, WithoutChannelBinding())
	s, err := c.Login(ctx, e.url, pin)
	if err != nil {
		t.Fatalf("unbound login: %v", err)
	}
	claims := e.verifyToken(t, s.AccessToken)
	if slices.Contains(claims.AMR, middleware.MethodChannelBound) || !slices.Contains(claims.AMR, middleware.MethodMPin) {
		t.Fatalf("an unbound login's amr is %v", claims.AMR)
	}
	if claims.Subject != "ulla@example.com" || len(s.SessionKey) != 32 {
		t.Fatalf("session %+v, claims %+v", s, claims)
	}
	if err := c.RenewPermits(ctx, e.url, pin, 2); err != nil {
		t.Fatalf("unbound renewal: %v", err)
	}
	var wp *WrongPINError
	if _, err := c.Login(ctx, e.url, []byte("0000")); !errors.As(err, &wp) {
		t.Fatalf("unbound login with a wrong PIN: %v", err)
	}
}
