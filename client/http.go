package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/polyroot/polyroot/internal/bundle"
)

// maxAnswer bounds the bodies the client reads (a year of permits fits).
const maxAnswer = 4 << 20

// A statusError is a non-2xx answer with its decoded {code, message}.
type statusError struct {
	status     int
	body       apiError
	retryAfter time.Duration
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, e.body.Code, e.body.Message)
}

func (e *statusError) api(from string) *APIError {
	return &APIError{From: from, Status: e.status, Code: e.body.Code, Message: e.body.Message, RetryAfter: e.retryAfter}
}

// A malformedError is a 2xx answer that is not the expected JSON.
type malformedError struct{ err error }

func (e *malformedError) Error() string { return "malformed answer: " + e.err.Error() }

// A reply is an HTTP answer: its status, Retry-After header and body (read up to a
// limit), and for an answer that came over TLS the channel binding of its connection.
type reply struct {
	status     int
	retryAfter string
	body       []byte
	// binding returns the RFC 9266 tls-exporter binding of the connection that carried
	// the answer; nil without TLS (and in a browser, where the page cannot see TLS).
	binding func() ([]byte, error)
}

// postJSON posts in as JSON to u and decodes a 2xx answer into out. It returns the
// reply (when there was one) so the caller can read its channel binding. The error is
// the transport's, a *statusError or a *malformedError.
func postJSON(ctx context.Context, hc httpClient, u, bearer string, in, out any) (*reply, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	r, err := send(ctx, hc, "POST", u, bearer, body, maxAnswer)
	if err != nil {
		return nil, err
	}
	if r.status/100 != 2 {
		se := &statusError{status: r.status}
		if json.Unmarshal(r.body, &se.body) != nil || se.body.Code == "" {
			se.body.Code, se.body.Message = "http_"+strconv.Itoa(r.status), statusText(r.status)
		}
		if s, err := strconv.Atoi(r.retryAfter); err == nil && s > 0 {
			se.retryAfter = time.Duration(s) * time.Second
		}
		return r, se
	}
	if err := json.Unmarshal(r.body, out); err != nil {
		return r, &malformedError{err}
	}
	return r, nil
}

// statusText names the HTTP statuses the client may meet (net/http's StatusText
// without importing net/http, which a browser build leaves out).
func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 409:
		return "Conflict"
	case 410:
		return "Gone"
	case 413:
		return "Request Entity Too Large"
	case 429:
		return "Too Many Requests"
	case 500:
		return "Internal Server Error"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	}
	return "HTTP " + strconv.Itoa(code)
}

// serverURL joins the auth server's base URL and a route, refusing plain http
// unless allowed.
func (o *options) serverURL(base, route string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("client: server URL %q: want https://host[:port]", base)
	}
	if u.Scheme == "http" && (!o.insecure || !bundle.IsLoopbackHost(u.Hostname())) {
		return "", fmt.Errorf("client: server URL %q is not https: logins need TLS for channel binding (plain http only to a loopback host, with WithInsecureHTTP)", base)
	}
	return u.JoinPath(route).String(), nil
}

// serverError maps an auth server refusal that has no specific kind.
func serverError(err error) error {
	var se *statusError
	if errors.As(err, &se) {
		return se.api("server")
	}
	return fmt.Errorf("client: auth server: %w", err)
}
