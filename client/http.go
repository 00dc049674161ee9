package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
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

// postJSON posts in as JSON to u and decodes a 2xx answer into out. It returns the
// response (body closed) so the caller can read its TLS state. The error is the
// transport's, a *statusError or a *malformedError.
func postJSON(ctx context.Context, hc *http.Client, u, bearer string, in, out any) (*http.Response, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := readLimited(resp.Body, maxAnswer)
	if err != nil {
		return resp, err
	}
	if resp.StatusCode/100 != 2 {
		se := &statusError{status: resp.StatusCode}
		if json.Unmarshal(data, &se.body) != nil || se.body.Code == "" {
			se.body.Code, se.body.Message = "http_"+strconv.Itoa(resp.StatusCode), http.StatusText(resp.StatusCode)
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			se.retryAfter = time.Duration(s) * time.Second
		}
		return resp, se
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp, &malformedError{err}
	}
	return resp, nil
}

// serverURL joins the auth server's base URL and a route, refusing plain http
// unless allowed.
func (o *options) serverURL(base, route string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("client: server URL %q: want https://host[:port]", base)
	}
	if u.Scheme == "http" && !o.insecure {
		return "", fmt.Errorf("client: server URL %q is not https: logins need TLS for channel binding", base)
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
