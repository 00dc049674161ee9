package middleware

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultCacheFor is how long an Introspector remembers a token's answer by default:
// the delay before a revocation takes effect in an app that uses it.
const DefaultCacheFor = 5 * time.Second

// maxCached bounds the answers an Introspector remembers; when it is full, the
// expired ones go, and if none has expired, all of them.
const maxCached = 1 << 16

// An Introspector asks the auth server whether access tokens are still active (POST
// /v1/token/introspect, RFC 7662) and remembers each answer for a short time. Its
// Revoked method is a Config.Revoked. It is safe for concurrent use.
type Introspector struct {
	endpoint   string
	credential string
	client     *http.Client
	cacheFor   time.Duration
	now        func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]answer // by SHA-256 of the token: the token is not kept
}

type answer struct {
	revoked bool
	until   time.Time
}

// NewIntrospector returns an Introspector of the auth server at serverURL, which it
// authenticates to with credential (the server's introspection token, a secret).
// client nil: one with a 5 s timeout. cacheFor is how long an answer that a token is
// active is kept — the revocation delay; 0 means DefaultCacheFor, a negative value
// asks the server every time. An answer that a token is inactive is kept until the
// token expires: a revocation is never undone.
func NewIntrospector(serverURL, credential string, client *http.Client, cacheFor time.Duration) *Introspector {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	if cacheFor == 0 {
		cacheFor = DefaultCacheFor
	}
	return &Introspector{endpoint: strings.TrimSuffix(serverURL, "/") + "/v1/token/introspect", credential: credential,
		client: client, cacheFor: cacheFor, now: time.Now, cache: map[[sha256.Size]byte]answer{}}
}

// Revoked reports whether the auth server no longer accepts token (whose claims c the
// caller has verified): revoked by its ID or with its identity, or its identity
// expired. Errors never contain the token.
func (in *Introspector) Revoked(ctx context.Context, token string, c *Claims) (bool, error) {
	key := sha256.Sum256([]byte(token))
	now := in.now()
	in.mu.Lock()
	a, ok := in.cache[key]
	in.mu.Unlock()
	if ok && now.Before(a.until) {
		return a.revoked, nil
	}
	active, err := in.ask(ctx, token, c)
	if err != nil {
		return false, err
	}
	a = answer{revoked: !active, until: now.Add(in.cacheFor)}
	if c.ExpiresAt != nil && (a.revoked || c.ExpiresAt.Time.Before(a.until)) {
		a.until = c.ExpiresAt.Add(Leeway)
	}
	if in.cacheFor > 0 || a.revoked {
		in.mu.Lock()
		if len(in.cache) >= maxCached {
			for k, old := range in.cache {
				if !now.Before(old.until) {
					delete(in.cache, k)
				}
			}
			if len(in.cache) >= maxCached {
				clear(in.cache)
			}
		}
		in.cache[key] = a
		in.mu.Unlock()
	}
	return a.revoked, nil
}

// ask posts the token to the introspection endpoint, as RFC 7662's form.
func (in *Introspector) ask(ctx context.Context, token string, c *Claims) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.endpoint, strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		return false, errors.New("middleware: introspection: the server URL does not parse")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+in.credential)
	resp, err := in.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("middleware: introspection: %w", err) // the URL, never the body
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("middleware: introspection: HTTP %d (401: a wrong introspection token; 404: the server has none)", resp.StatusCode)
	}
	var res struct {
		Active bool   `json:"active"`
		Sub    string `json:"sub"`
		JTI    string `json:"jti"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&res); err != nil {
		return false, errors.New("middleware: introspection: the answer is not JSON")
	}
	if res.Active && (res.Sub != c.Subject || res.JTI != c.ID) {
		return false, errors.New("middleware: introspection: the answer is about another token")
	}
	return res.Active, nil
}
