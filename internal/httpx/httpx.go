// Package httpx holds what polyroot's HTTP services share: one error type that carries
// its HTTP status and a stable code, strict JSON request decoding with size limits,
// per-client rate limiting, and request IDs.
//
// Security invariants: error messages are written for the client and never contain a
// secret; an internal error reaches the client only as "internal error".
package httpx

import (
	"container/list"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// An Error is an API error: its Status is the HTTP status, its Code a stable
// machine-readable name, its Message a sentence for people.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// MaxBody is the default request body limit.
const MaxBody = 16 << 10

// DecodeJSON reads a JSON request body into v: the content type must be
// application/json, the body at most limit bytes, and the JSON exactly what v
// describes (UnmarshalStrict: valid UTF-8, exact-case field names, no duplicate or
// unknown fields, the right types, nothing after the value).
func DecodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return Errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the request body as application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "the request body is larger than %d bytes", limit)
	case err != nil:
		return Errorf(http.StatusBadRequest, "bad_body", "could not read the request body")
	}
	return UnmarshalStrict(body, v)
}

// WriteJSON writes v with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes err as JSON {code, message}. An error that is not an *Error is
// logged with the request ID and answered as a 500 "internal error".
func WriteError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	var e *Error
	if !errors.As(err, &e) {
		logger.Error("internal error", "request_id", RequestID(r), "path", LoggedPath(r), "err", err)
		e = Errorf(http.StatusInternalServerError, "internal", "internal error (request %s)", RequestID(r))
	}
	WriteJSON(w, e.Status, e)
}

// NotFound answers 404 not_found: a route table's handler for unknown paths. Wrap it
// in the table's rate limit: anyone can send such requests at will.
func NotFound(logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, logger, Errorf(http.StatusNotFound, "not_found", "no such endpoint"))
	})
}

// MethodNotAllowed answers 405 method_not_allowed: a route table's handler for a
// known path with another method. Wrap it in the table's rate limit, as NotFound.
func MethodNotAllowed(logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, logger, Errorf(http.StatusMethodNotAllowed, "method_not_allowed", "method %s not allowed here", r.Method))
	})
}

type ctxKey struct{}

// RequestID returns the request's ID, set by WithRequestID.
func RequestID(r *http.Request) string {
	id, _ := r.Context().Value(ctxKey{}).(string)
	return id
}

// WithRequestID gives each request a random ID, in its context and in the
// X-Request-Id response header.
func WithRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
	})
}

// A RateLimiter limits requests per client with a token bucket each, and answers 429
// with Retry-After beyond the limit.
//
// A client is an IPv4 address, or an IPv6 /64 (an IPv4-mapped IPv6 address counts as
// the IPv4 address): one host, or one customer's network, commonly holds a whole /64,
// so keying on full IPv6 addresses would hand it 2⁶⁴ buckets.
//
// An IPv6 /48, one site's usual allocation, has 65,536 /64s: besides its /64's, a
// request from IPv6 also takes a token from its /48's bucket, which allows netFactor
// times a client's rate and burst. A source cycling through its /64s is held to that.
//
// The buckets are bounded, and each request costs O(1) under the lock: they are kept
// in least-recently-used order, a bucket idle for maxClientIdle is forgotten (it is
// found at the back, so each is dropped once, not looked for by scanning), and at
// maxRateClients the least recently used one makes room for a new one. The price is
// that a flood from that many distinct sources between two requests of a client
// forgets the client's bucket, which then starts full again: the client may get up to
// one burst more than its limit. A busy client, used recently, is the last to go; a
// server whose honest clients outnumber the table still gives each new one a bucket;
// and memory and time stay bounded under any flood.
type RateLimiter struct {
	limit     rate.Limit
	burst     int
	now       func() time.Time
	logger    *slog.Logger
	throttled prometheus.Counter // may be nil

	mu      sync.Mutex
	clients map[string]*list.Element // of *clientLimiter, by rateKeys
	lru     list.List                // the clientLimiters, most recently used first
}

// netFactor is how many times a client's rate and burst the clients of one IPv6 /48
// may send together.
const netFactor = 64

// maxRateClients bounds the buckets of a RateLimiter (a few hundred bytes each).
const maxRateClients = 1 << 14

// maxClientIdle is how long a RateLimiter keeps the bucket of a client that sends
// nothing.
const maxClientIdle = time.Minute

type clientLimiter struct {
	key  string
	lim  *rate.Limiter
	seen time.Time
}

// NewRateLimiter allows each client (an IPv4 address or an IPv6 /64) perSecond
// requests on average, burst at once.
func NewRateLimiter(perSecond float64, burst int, logger *slog.Logger) *RateLimiter {
	return &RateLimiter{limit: rate.Limit(perSecond), burst: burst, now: time.Now, clients: map[string]*list.Element{}, logger: logger}
}

// CountThrottled makes l count the requests it refuses in c (see NewThrottledCounter),
// and returns l.
func (l *RateLimiter) CountThrottled(c prometheus.Counter) *RateLimiter {
	l.throttled = c
	return l
}

// NewThrottledCounter is the counter of the requests a service's rate limiter refused
// (429), named polyroot_<service>_http_throttled_total. The log has at most one line
// per client address and minute about them (LogRequests); this counts them all.
func NewThrottledCounter(service string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Name: "polyroot_" + service + "_http_throttled_total",
		Help: "Requests refused with 429 rate_limited (the log samples them: one line per client address and minute).",
	})
}

// NewRefusedConnectionsCounter is the counter of a service's connections closed at
// once because their client already held its share of the public listener's
// connections (ServeOptions.MaxClientConnections).
func NewRefusedConnectionsCounter(service string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Name: "polyroot_" + service + "_http_connections_refused_total",
		Help: "Connections closed at once because their client (an IPv4 address or IPv6 /64) held its share of the listener's connections (the log samples them: one line per client and minute).",
	})
}

// Wrap applies the limit to next.
func (l *RateLimiter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := l.now()
		client, network := rateKeys(clientAddress(r))
		res := l.limiter(client, 1, now).ReserveN(now, 1)
		delay := res.DelayFrom(now)
		if network != "" && delay == 0 {
			netRes := l.limiter(network, netFactor, now).ReserveN(now, 1)
			if delay = netRes.DelayFrom(now); delay > 0 {
				netRes.CancelAt(now)
			}
		}
		if delay > 0 {
			res.CancelAt(now)
			if l.throttled != nil {
				l.throttled.Inc()
			}
			w.Header().Set("Retry-After", strconv.Itoa(int(delay/time.Second)+1))
			WriteError(w, r, l.logger, Errorf(http.StatusTooManyRequests, "rate_limited", "too many requests; retry after %v", delay.Round(time.Second)+time.Second))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limiter returns the bucket of key at now, O(1) (see RateLimiter); a new one allows
// scale times a client's rate and burst.
func (l *RateLimiter) limiter(key string, scale int, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	for e := l.lru.Back(); e != nil && now.Sub(e.Value.(*clientLimiter).seen) > maxClientIdle; e = l.lru.Back() {
		l.forget(e)
	}
	if e, ok := l.clients[key]; ok {
		c := e.Value.(*clientLimiter)
		c.seen = now
		l.lru.MoveToFront(e)
		return c.lim
	}
	if len(l.clients) >= maxRateClients {
		l.forget(l.lru.Back())
	}
	c := &clientLimiter{key: key, lim: rate.NewLimiter(l.limit*rate.Limit(scale), l.burst*scale), seen: now}
	l.clients[key] = l.lru.PushFront(c)
	return c.lim
}

// forget drops the bucket e; l.mu is held.
func (l *RateLimiter) forget(e *list.Element) {
	delete(l.clients, l.lru.Remove(e).(*clientLimiter).key)
}

// rateKeys are the buckets a RateLimiter counts a request from addr (clientAddress)
// against: the client, an IPv4 address or the /64 of an IPv6 one (IPv4-mapped ones as
// IPv4), and for IPv6 its /48 (network; "" for IPv4). What does not parse as an IP
// address (a Unix socket's) is a client of its own.
func rateKeys(addr string) (client, network string) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr, ""
	}
	if a = a.Unmap(); a.Is4() {
		return a.String(), ""
	}
	p64, _ := a.Prefix(64) // cannot fail for IPv6; drops the zone
	p48, _ := a.Prefix(48)
	return p64.String(), p48.String()
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

// clientAddress is the address a request came from, without its port.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// LogRequests logs one line per request with its ID, method, path (at most
// maxLoggedPath bytes) and status and duration: at Debug for successes, Info for
// client errors, Warn for server errors. Client errors are sampled per client
// address, as anyone can cause them at will: at most one line per address per
// ThrottleLogInterval for throttled requests (429) and one for the other 4xx, each
// naming the address and how many were not logged since the previous line (the
// request counters have them all). It never logs bodies or headers.
func LogRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return logRequests(logger, next, newThrottleLog(time.Now), newThrottleLog(time.Now))
}

// maxLoggedPath bounds the path in a log line: a request may carry a path of up to
// MaxHeaderBytes.
const maxLoggedPath = 256

// LoggedPath is r's URL path for a log line, cut to maxLoggedPath bytes.
func LoggedPath(r *http.Request) string {
	if p := r.URL.Path; len(p) > maxLoggedPath {
		return p[:maxLoggedPath] + "…"
	}
	return r.URL.Path
}

func logRequests(logger *slog.Logger, next http.Handler, throttled, clientErrors *throttleLog) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		switch {
		case sw.status >= 500:
			logger.Log(r.Context(), slog.LevelWarn, "request", "request_id", RequestID(r), "method", r.Method, "path", LoggedPath(r),
				"status", sw.status, "duration_ms", float64(time.Since(start).Microseconds())/1000)
		case sw.status >= 400:
			msg, sample, count := "request failed", clientErrors, "failed_unlogged"
			if sw.status == http.StatusTooManyRequests {
				msg, sample, count = "request throttled", throttled, "throttled_unlogged"
			}
			addr := clientAddress(r)
			unlogged, ok := sample.admit(addr)
			if !ok {
				return
			}
			logger.LogAttrs(r.Context(), slog.LevelInfo, msg, slog.String("request_id", RequestID(r)),
				slog.String("method", r.Method), slog.String("path", LoggedPath(r)), slog.Int("status", sw.status),
				slog.String("client", addr), slog.Int(count, unlogged))
		default:
			logger.Log(r.Context(), slog.LevelDebug, "request", "request_id", RequestID(r), "method", r.Method, "path", LoggedPath(r),
				"status", sw.status, "duration_ms", float64(time.Since(start).Microseconds())/1000)
		}
	})
}
