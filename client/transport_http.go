//go:build !(js && wasm)

package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/polyroot/polyroot/internal/bundle"
)

// httpClient is what the client sends its requests with: net/http here, the browser's
// fetch in WebAssembly (transport_js.go).
type httpClient = *http.Client

// WithDTAClient sets the HTTP client for requests to DTAs (default: a client with
// the system's roots).
func WithDTAClient(c *http.Client) Option { return func(o *options) { o.dtaHTTP = c } }

// WithServerClient sets the HTTP client for the auth server and for fetching the
// bundle at bootstrap. For logins, its transport (if an *http.Transport) is cloned and
// limited to one kept-alive connection per host, so that both passes of a login use the
// same TLS connection.
func WithServerClient(c *http.Client) Option { return func(o *options) { o.serverHTTP = c } }

// setClients sets the default clients and wraps them: DTA requests refuse plain http
// outside loopback, logins keep one connection.
func (o *options) setClients() {
	if o.dtaHTTP == nil {
		o.dtaHTTP = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	o.dtaHTTP = dtaClient(o.dtaHTTP, o.insecureDTA)
	o.serverHTTP = loginClient(o.serverHTTP)
}

// send makes one request with hc and reads the answer's body up to limit bytes.
func send(ctx context.Context, hc *http.Client, method, u, bearer string, body []byte, limit int64) (*reply, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := readLimited(resp.Body, limit)
	if err != nil {
		return nil, err
	}
	r := &reply{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: data}
	if cs := resp.TLS; cs != nil {
		r.binding = func() ([]byte, error) { return exporter(cs) }
	}
	return r, nil
}

func exporter(cs *tls.ConnectionState) ([]byte, error) {
	if cs.Version < tls.VersionTLS13 {
		return nil, fmt.Errorf("%w (negotiated %s)", ErrTLSVersion, tls.VersionName(cs.Version))
	}
	b, err := cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
	if err != nil {
		return nil, fmt.Errorf("client: the TLS connection offers no channel binding: %w", err)
	}
	return b, nil
}

// loginClient returns a client whose transport keeps one connection per host alive
// and reuses it, so that pass 1 and pass 2 of a login travel on the same TLS
// connection (the channel binding is that connection's), and that follows no
// redirect: a redirect from https to http would take a login off TLS, where it has no
// channel to bind to, and send an access token in clear (refuseRedirect).
func loginClient(c *http.Client) *http.Client {
	if c == nil {
		c = &http.Client{Transport: http.DefaultTransport}
	}
	out := *c
	out.CheckRedirect = refuseRedirect
	t, ok := c.Transport.(*http.Transport)
	if c.Transport == nil {
		t, ok = http.DefaultTransport.(*http.Transport), true
	}
	if ok {
		t = t.Clone()
		t.MaxConnsPerHost, t.MaxIdleConnsPerHost, t.DisableKeepAlives = 1, 1, false
		if t.IdleConnTimeout == 0 {
			t.IdleConnTimeout = 90 * time.Second
		}
		out.Transport = t
	}
	return &out
}

// ErrRedirect: the auth server answered a request with a redirect, which the client
// does not follow.
var ErrRedirect = errors.New("client: the auth server answered with a redirect, which polyroot clients do not follow (an interceptor could move a login off TLS); use the server's own URL")

func refuseRedirect(req *http.Request, _ []*http.Request) error {
	return fmt.Errorf("%w (to %s)", ErrRedirect, req.URL.Redacted())
}

// dtaClient returns a copy of c whose requests (redirects included) refuse plain http
// to a host that is not loopback, unless allowHTTP. The transport is c's at the time
// of each request (http.DefaultTransport if nil).
func dtaClient(c *http.Client, allowHTTP bool) *http.Client {
	out := *c
	out.Transport = &dtaTransport{base: c, allowHTTP: allowHTTP}
	return &out
}

type dtaTransport struct {
	base      *http.Client
	allowHTTP bool
}

func (t *dtaTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !t.allowHTTP && !bundle.IsLoopbackHost(req.URL.Hostname()) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("client: refusing plain http to the DTA at %s: its shares would cross the network unencrypted; "+
			"the trust bundle must name https:// DTA URLs (or allow it explicitly, for tests: WithInsecureDTAHTTP, --allow-insecure-dta-http): %w",
			req.URL.Host, bundle.ErrPlainHTTP)
	}
	rt := t.base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	return rt.RoundTrip(req)
}
