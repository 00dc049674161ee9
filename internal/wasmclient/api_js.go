//go:build js && wasm

package wasmclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"sync"
	"syscall/js"
	"time"

	"github.com/polyroot/polyroot/client"
	"github.com/polyroot/polyroot/internal/bundle"
)

// opTimeout bounds one call of the API (an enrolment waits for every DTA).
const opTimeout = 2 * time.Minute

// Register sets globalThis.polyroot to the API (see the package documentation). The
// functions stay registered for the life of the module.
func Register() {
	api := js.Global().Get("Object").New()
	api.Set("status", promiseFunc(apiStatus))
	api.Set("enrol", promiseFunc(apiEnrol))
	api.Set("login", promiseFunc(apiLogin))
	api.Set("refreshPermits", promiseFunc(apiRefreshPermits))
	js.Global().Set("polyroot", api)
}

// promiseFunc makes f a JavaScript function that returns a Promise, settled by f run
// in a goroutine (it waits for fetch and storage promises, which the event loop
// settles).
func promiseFunc(f func(ctx context.Context, args []js.Value) (map[string]any, error)) js.Func {
	return js.FuncOf(func(_ js.Value, args []js.Value) any {
		args = append([]js.Value(nil), args...)
		executor := js.FuncOf(func(_ js.Value, pa []js.Value) any {
			resolve, reject := pa[0], pa[1]
			go func() {
				defer func() {
					if r := recover(); r != nil {
						reject.Invoke(jsError(Error{Kind: KindInternal, Message: "wasmclient: internal error"}))
					}
				}()
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				defer cancel()
				out, err := f(ctx, args)
				if err != nil {
					reject.Invoke(jsError(Classify(err)))
					return
				}
				resolve.Invoke(js.ValueOf(out))
			}()
			return nil
		})
		defer executor.Release() // the Promise constructor calls it at once
		return js.Global().Get("Promise").New(executor)
	})
}

func jsError(e Error) js.Value {
	v := js.Global().Get("Error").New(e.Message)
	v.Set("kind", e.Kind)
	if e.Kind == KindWrongPIN {
		v.Set("triesLeft", e.TriesLeft)
	}
	return v
}

// str returns argument i if it is a string, else "".
func str(args []js.Value, i int) string {
	if i < len(args) && args[i].Type() == js.TypeString {
		return args[i].String()
	}
	return ""
}

// pinArg returns argument i, a string, as UTF-8 bytes without making a Go string of
// it; the caller clears them. The encoder's array is zeroed.
func pinArg(args []js.Value, i int) []byte {
	if i >= len(args) || args[i].Type() != js.TypeString {
		return nil
	}
	enc := js.Global().Get("TextEncoder").New().Call("encode", args[i])
	b := make([]byte, enc.Get("length").Int())
	js.CopyBytesToGo(b, enc)
	enc.Call("fill", 0)
	return b
}

// clients are the open clients, by origin.
var (
	mu      sync.Mutex
	clients = map[string]*client.Client{}
)

// originOf checks an auth server origin ("https://host[:port]"; http only on
// loopback) and returns it without a trailing slash, with the client options for it.
func originOf(s string) (string, []client.Option, error) {
	s = strings.TrimSuffix(s, "/")
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return "", nil, fmt.Errorf("wasmclient: %q is not an origin like https://auth.example", s)
	}
	opts := []client.Option{client.WithoutChannelBinding()}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && bundle.IsLoopbackHost(u.Hostname()):
		opts = append(opts, client.WithInsecureHTTP())
	default:
		return "", nil, fmt.Errorf("wasmclient: origin %q: want https", s)
	}
	return s, opts, nil
}

// pinned returns the pinned fingerprint in st, "" when there is none.
func pinned(st jsStorage) (string, error) {
	b, err := st.Load(client.FingerprintFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// open returns the client of origin (cached), ErrNotEnrolled when it has no pinned
// bundle.
func open(origin string) (*client.Client, error) {
	origin, opts, err := originOf(origin)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	if c := clients[origin]; c != nil {
		return c, nil
	}
	st := jsStorage{prefix: origin + "/"}
	if fp, err := pinned(st); err != nil {
		return nil, err
	} else if fp == "" {
		return nil, client.ErrNotEnrolled
	}
	c, err := client.OpenStorage(st, opts...)
	if err != nil {
		return nil, err
	}
	clients[origin] = c
	return c, nil
}

func apiStatus(_ context.Context, args []js.Value) (map[string]any, error) {
	out := map[string]any{"bootstrapped": false, "enrolled": false, "id": "", "domain": "",
		"currentPermit": false, "permitsUntil": ""}
	c, err := open(str(args, 0))
	if errors.Is(err, client.ErrNotEnrolled) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	s := c.Status()
	out["bootstrapped"], out["domain"] = true, s.Domain
	if s.Enrolled {
		out["enrolled"], out["id"], out["currentPermit"], out["permitsUntil"] = true, s.ID, s.CurrentPermit, rfc3339(s.PermitsUntil)
	}
	return out, nil
}

func apiEnrol(ctx context.Context, args []js.Value) (_ map[string]any, err error) {
	pin := pinArg(args, 2)
	defer clear(pin)
	origin, opts, err := originOf(str(args, 0))
	if err != nil {
		return nil, err
	}
	code, want := str(args, 1), normalizeFingerprint(str(args, 3))
	st := jsStorage{prefix: origin + "/"}
	mu.Lock()
	delete(clients, origin)
	mu.Unlock()
	have, err := pinned(st)
	if err != nil {
		return nil, err
	}
	bundleURL := origin + "/v1/bundle"
	if have == "" || (want != "" && want != have) {
		if want == "" {
			// Trust on first use: the bundle this origin serves now.
			file, err := fetchBytes(ctx, bundleURL)
			if err != nil {
				return nil, err
			}
			sum := sha256.Sum256(file)
			want = hex.EncodeToString(sum[:])
		}
		if have != "" {
			// Enrolment replaces the enrolment, which may be under the bundle pinned
			// before (Bootstrap would refuse it): removed only once the new bundle has
			// the fingerprint asked for, and put back if the new enrolment fails.
			file, ferr := fetchBytes(ctx, bundleURL)
			if ferr != nil {
				return nil, ferr
			}
			if sum := sha256.Sum256(file); hex.EncodeToString(sum[:]) != want {
				return nil, fmt.Errorf("%w: %s does not have the fingerprint asked for; the enrolment is kept", client.ErrBundleFingerprint, bundleURL)
			}
			restore := snapshot(st, client.TokenFile, client.BundleFile, client.FingerprintFile, client.BundlePreviousFile, client.BundleCheckFile)
			defer func() {
				if err != nil { // apiEnrol's result
					restore()
				}
			}()
			if err = st.Remove(client.TokenFile); err != nil {
				return nil, err
			}
		}
		if err = client.BootstrapStorage(ctx, st, bundleURL, want, append(opts, client.WithReplace())...); err != nil {
			return nil, err
		}
	}
	c, err := client.OpenStorage(st, append(opts, client.WithReplace())...)
	if err != nil {
		return nil, err
	}
	if err = c.Enroll(ctx, origin, code, pin, false); err != nil {
		return nil, err
	}
	return map[string]any{"id": c.Status().ID}, nil
}

// snapshot reads the named files of st and returns the function that puts them back
// as they were (removing those that were not there), best effort.
func snapshot(st client.Storage, names ...string) (restore func()) {
	saved := make(map[string][]byte, len(names))
	for _, name := range names {
		if b, err := st.Load(name); err == nil {
			saved[name] = b
		}
	}
	return func() {
		for _, name := range names {
			if b, ok := saved[name]; ok {
				st.Store(name, b)
			} else {
				st.Remove(name)
			}
		}
	}
}

func apiLogin(ctx context.Context, args []js.Value) (map[string]any, error) {
	pin := pinArg(args, 1)
	defer clear(pin)
	origin := strings.TrimSuffix(str(args, 0), "/")
	c, err := open(origin)
	if err != nil {
		return nil, err
	}
	if len(pin) == 0 {
		return nil, fmt.Errorf("wasmclient: a PIN is needed")
	}
	// The login page of an OpenID Provider auth request logs in for that request
	// (args[2]); only such a login's token completes it.
	authRequest := str(args, 2)
	login := func() (*client.Session, error) {
		if authRequest != "" {
			return c.LoginForAuthRequest(ctx, origin, pin, authRequest)
		}
		return c.Login(ctx, origin, pin)
	}
	s, err := login()
	if errors.Is(err, client.ErrPermitExpired) {
		if err = c.RenewPermits(ctx, origin, pin, 0); err == nil {
			s, err = login()
		}
	}
	if err != nil {
		return nil, err
	}
	clear(s.SessionKey)
	if needsRefresh(c.Status(), time.Now()) {
		go func(token string) {
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			if err := c.RefreshPermits(ctx, origin, token, 0); err != nil {
				js.Global().Get("console").Call("warn", "polyroot: refreshing the permits in the background failed: "+Classify(err).Kind)
			}
		}(s.AccessToken)
	}
	return map[string]any{"id": s.ID, "accessToken": s.AccessToken, "expiresAt": rfc3339(s.ExpiresAt)}, nil
}

func apiRefreshPermits(ctx context.Context, args []js.Value) (map[string]any, error) {
	origin := strings.TrimSuffix(str(args, 0), "/")
	c, err := open(origin)
	if err != nil {
		return nil, err
	}
	if err := c.RefreshPermits(ctx, origin, str(args, 1), 0); err != nil {
		return nil, err
	}
	return map[string]any{"permitsUntil": rfc3339(c.Status().PermitsUntil)}, nil
}

// fetchBytes GETs u with the browser's fetch (for the bundle on first use).
func fetchBytes(ctx context.Context, u string) ([]byte, error) {
	init := js.Global().Get("Object").New()
	init.Set("credentials", "omit")
	init.Set("cache", "no-store")
	resp, err := await(js.Global().Call("fetch", u, init))
	if err != nil {
		return nil, &url.Error{Op: "GET", URL: u, Err: err}
	}
	if st := resp.Get("status").Int(); st != 200 {
		return nil, fmt.Errorf("wasmclient: fetching the bundle from %s: HTTP %d", u, st)
	}
	buf, err := await(resp.Call("arrayBuffer"))
	if err != nil {
		return nil, &url.Error{Op: "GET", URL: u, Err: err}
	}
	arr := js.Global().Get("Uint8Array").New(buf)
	if n := arr.Get("length").Int(); n > bundle.MaxSize {
		return nil, fmt.Errorf("wasmclient: the bundle from %s is %d bytes, more than a bundle may be (%d)", u, n, bundle.MaxSize)
	}
	b := make([]byte, arr.Get("length").Int())
	js.CopyBytesToGo(b, arr)
	return b, ctx.Err()
}

// rfc3339 formats t, or "" for the zero time.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
