//go:build js && wasm

package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"syscall/js"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/jsawait"
)

// httpClient is what the client sends its requests with: in WebAssembly the browser's
// fetch, called directly rather than through net/http, which would more than double
// the size of the module. The page cannot see TLS, so no answer carries a channel
// binding: a browser client logs in WithoutChannelBinding.
type httpClient = *fetchClient

// A fetchClient sends requests with the browser's fetch, without cookies or other
// credentials. A DTA's client (dta) refuses plain http outside loopback unless
// allowHTTP, as dtaClient does natively.
type fetchClient struct {
	dta, allowHTTP bool
}

func (o *options) setClients() {
	o.dtaHTTP = &fetchClient{dta: true, allowHTTP: o.insecureDTA}
	o.serverHTTP = &fetchClient{}
}

// send makes one request with the browser's fetch and reads the answer's body up to
// limit bytes. It must not run on the JavaScript event loop's goroutine (it waits for
// promises): call it from a goroutine.
func send(ctx context.Context, hc *fetchClient, method, u, bearer string, body []byte, limit int64) (*reply, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if hc.dta && pu.Scheme == "http" && !hc.allowHTTP && !bundle.IsLoopbackHost(pu.Hostname()) {
		return nil, fmt.Errorf("client: refusing plain http to the DTA at %s: its shares would cross the network unencrypted: %w",
			pu.Host, bundle.ErrPlainHTTP)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	global := js.Global()
	ac := global.Get("AbortController").New()
	headers := global.Get("Object").New()
	init := global.Get("Object").New()
	init.Set("method", method)
	init.Set("credentials", "omit")
	init.Set("cache", "no-store")
	if !hc.dta {
		init.Set("redirect", "error") // as the native client: no redirect from the auth server is followed
	}
	init.Set("signal", ac.Get("signal"))
	if body != nil {
		headers.Set("Content-Type", "application/json")
		headers.Set("Accept", "application/json")
		b := global.Get("Uint8Array").New(len(body))
		js.CopyBytesToJS(b, body)
		init.Set("body", b)
	}
	if bearer != "" {
		headers.Set("Authorization", "Bearer "+bearer)
	}
	init.Set("headers", headers)
	abort := func() { ac.Call("abort") }
	// Failures are *url.Error, as net/http's.
	resp, err := awaitFetch(ctx, global.Call("fetch", u, init), abort)
	if err != nil {
		return nil, &url.Error{Op: method, URL: u, Err: err}
	}
	r := &reply{status: resp.Get("status").Int()}
	if ra := resp.Get("headers").Call("get", "Retry-After"); ra.Type() == js.TypeString {
		r.retryAfter = ra.String()
	}
	// A DTA or server must not make the tab hold more than limit bytes of its answer:
	// one that says it is larger is refused unread, and every body is read as a stream,
	// cancelled once past limit (a Content-Length can be absent, or count the bytes
	// before a Content-Encoding the browser undoes).
	tooLarge := fmt.Errorf("client: answer larger than %d bytes", limit)
	if cl := resp.Get("headers").Call("get", "Content-Length"); cl.Type() == js.TypeString {
		if n, err := strconv.ParseInt(cl.String(), 10, 64); err == nil && n > limit {
			abort() // the body is not wanted: the connection need not carry it
			return nil, tooLarge
		}
	}
	body, within, err := readStream(ctx, resp.Get("body"), limit, abort)
	switch {
	case err != nil:
		return nil, &url.Error{Op: method, URL: u, Err: err}
	case !within:
		return nil, tooLarge
	}
	r.body = body
	return r, nil
}

// readStream reads a fetch answer's body stream (null for no body) while it stays
// within limit bytes; once past it, it cancels the stream and returns within false.
func readStream(ctx context.Context, stream js.Value, limit int64, abort func()) (b []byte, within bool, err error) {
	if stream.IsNull() || stream.IsUndefined() {
		return nil, true, nil
	}
	reader := stream.Call("getReader")
	for {
		chunk, err := awaitFetch(ctx, reader.Call("read"), abort)
		if err != nil {
			return nil, false, err
		}
		if chunk.Get("done").Bool() {
			return b, true, nil
		}
		v := chunk.Get("value")
		n := v.Get("length").Int()
		if int64(len(b))+int64(n) > limit {
			reader.Call("cancel")
			return nil, false, nil
		}
		b = append(b, make([]byte, n)...)
		js.CopyBytesToGo(b[len(b)-n:], v)
	}
}

// awaitFetch is jsawait.Await for the fetch of a request: a rejection says so.
func awaitFetch(ctx context.Context, p js.Value, abort func()) (js.Value, error) {
	v, err := jsawait.Await(ctx, p, abort)
	if err != nil && ctx.Err() == nil {
		err = errors.New("fetch: " + err.Error())
	}
	return v, err
}
