// Package httpx holds what polyroot's HTTP services share: one error type that carries
// its HTTP status and a stable code, strict JSON request decoding with size limits,
// per-client rate limiting, and request IDs.
//
// Security invariants: error messages are written for the client and never contain a
// secret; an internal error reaches the client only as "internal error".
package httpx

import (
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
		logger.Error("internal error", "request_id", RequestID(r), "path", r.URL.Path, "err", err)
		e = Errorf(http.StatusInternalServerError, "internal", "internal error (request %s)", RequestID(r))
	}
	WriteJSON(w, e.Status, e)
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

// A RateLimiter limits requests per client address with a token bucket each, and
// answers 429 with Retry-After beyond the limit.
type RateLimiter struct {
	limit     rate.Limit
	burst     int
	mu        sync.Mutex
	clients   map[string]*clientLimiter
	logger    *slog.Logger
	throttled prometheus.Counter // may be nil
}

type clientLimiter struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewRateLimiter allows each client perSecond requests on average, burst at once.
func NewRateLimiter(perSecond float64, burst int, logger *slog.Logger) *RateLimiter {
	return &RateLimiter{limit: rate.Limit(perSecond), burst: burst, clients: map[string]*clientLimiter{}, logger: logger}
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

// Wrap applies the limit to next.
func (l *RateLimiter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := clientAddress(r)
		res := l.limiter(host).Reserve()
		if delay := res.Delay(); delay > 0 {
			res.Cancel()
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

func (l *RateLimiter) limiter(host string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if len(l.clients) > 10000 { // forget clients idle for a minute
		for h, c := range l.clients {
			if now.Sub(c.seen) > time.Minute {
				delete(l.clients, h)
			}
		}
	}
	c, ok := l.clients[host]
	if !ok {
		c = &clientLimiter{lim: rate.NewLimiter(l.limit, l.burst)}
		l.clients[host] = c
	}
	c.seen = now
	return c.lim
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

// LogRequests logs one line per request with its ID, method, path, status and
// duration: at Debug for successes, Info for client errors, Warn for server errors.
// Throttled requests (429) are sampled: at most one line per client address per
// ThrottleLogInterval, naming the address and how many were not logged since the
// previous line (the rate limiter's counter has them all). It never logs bodies or
// headers.
func LogRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return logRequests(logger, next, newThrottleLog(time.Now))
}

func logRequests(logger *slog.Logger, next http.Handler, tl *throttleLog) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		level := slog.LevelDebug
		switch {
		case sw.status >= 500:
			level = slog.LevelWarn
		case sw.status == http.StatusTooManyRequests:
			addr := clientAddress(r)
			unlogged, ok := tl.admit(addr)
			if !ok {
				return
			}
			logger.LogAttrs(r.Context(), slog.LevelInfo, "request throttled", slog.String("request_id", RequestID(r)),
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", sw.status),
				slog.String("client", addr), slog.Int("throttled_unlogged", unlogged))
			return
		case sw.status >= 400:
			level = slog.LevelInfo
		}
		logger.Log(r.Context(), level, "request", "request_id", RequestID(r), "method", r.Method, "path", r.URL.Path,
			"status", sw.status, "duration_ms", float64(time.Since(start).Microseconds())/1000)
	})
}
