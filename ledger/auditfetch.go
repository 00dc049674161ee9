package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"
)

// How the auditor reads a DTA's log over HTTP: politely. A DTA limits requests per
// client address and answers 429 with Retry-After beyond its limit; the auditor then
//   - waits as long as Retry-After says (plus a little jitter) before it asks again,
//     and so do all its other requests to that DTA (one pause per DTA, not one per
//     worker: the workers must not keep the DTA's bucket empty);
//   - halves the number of its requests in flight to that DTA, and adds one back for
//     each window of as many answers without a refusal (additive increase,
//     multiplicative decrease, as TCP does), up to AuditConfig.Workers;
//   - retries at most AuditConfig.MaxRetries times per request, and gives up at once
//     when Retry-After is longer than AuditConfig.MaxRetryAfter.
//
// 503 is honoured the same way; 502 and 504 (a proxy in front of the DTA) and a
// connection reset or cut short are retried with exponential backoff and jitter. A
// refused connection, a TLS failure or a timeout is not retried: the DTA is down or
// not trusted, and the audit says so at once. AuditConfig.RequestsPerSecond adds a
// fixed pace on top.

// Defaults of the auditor's retries.
const (
	DefaultAuditMaxRetries    = 8
	DefaultAuditMaxRetryAfter = 2 * time.Minute
	auditBackoffBase          = 250 * time.Millisecond
	auditBackoffMax           = 15 * time.Second
	// auditMaxErrorBody bounds what is kept of an answer that is not 200.
	auditMaxErrorBody = 64 << 10
)

// auditPacer is the http.RoundTripper of one DTA's audit: it paces and retries the
// requests of inner, the client the caller configured (its Timeout applies to each try).
type auditPacer struct {
	inner         *http.Client
	maxRetries    int
	maxRetryAfter time.Duration
	backoffBase   time.Duration
	backoffMax    time.Duration
	pace          *rate.Limiter                                    // nil: no fixed pace
	onRetry       func(status int, reason string, w time.Duration) // may be nil

	mu       sync.Mutex
	changed  chan struct{} // closed, and replaced, when a slot frees or the pause changes
	workers  int           // the most requests in flight
	window   int           // the requests allowed in flight now, 1 to workers
	inFlight int
	streak   int       // answers without refusal since window last changed
	resume   time.Time // no request starts before (Retry-After)

	throttled atomic.Uint64 // 429 and 503 answers
	retries   atomic.Uint64
	waited    atomic.Int64 // ns spent waiting before retries
}

func newAuditPacer(inner *http.Client, cfg AuditConfig) *auditPacer {
	p := &auditPacer{inner: inner, maxRetries: cfg.MaxRetries, maxRetryAfter: cfg.MaxRetryAfter,
		backoffBase: auditBackoffBase, backoffMax: auditBackoffMax,
		changed: make(chan struct{}), workers: int(cfg.Workers), window: int(cfg.Workers)}
	if p.maxRetries == 0 {
		p.maxRetries = DefaultAuditMaxRetries
	}
	if p.maxRetries < 0 {
		p.maxRetries = 0
	}
	if p.maxRetryAfter <= 0 {
		p.maxRetryAfter = DefaultAuditMaxRetryAfter
	}
	if p.workers < 1 {
		p.workers, p.window = 1, 1
	}
	if cfg.RequestsPerSecond > 0 {
		p.pace = rate.NewLimiter(rate.Limit(cfg.RequestsPerSecond), 1)
	}
	return p
}

// client is the http.Client to hand Tessera's fetcher.
func (p *auditPacer) client() *http.Client { return &http.Client{Transport: p} }

// notify wakes the waiters; p.mu is held.
func (p *auditPacer) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// acquire waits for the pause to end and a slot in the window, then for the fixed pace.
func (p *auditPacer) acquire(ctx context.Context) error {
	for {
		p.mu.Lock()
		wait, changed := time.Until(p.resume), p.changed
		if wait <= 0 && p.inFlight < p.window {
			p.inFlight++
			p.mu.Unlock()
			break
		}
		p.mu.Unlock()
		var timer *time.Timer
		var expired <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			expired = timer.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-expired:
		}
		if timer != nil {
			timer.Stop()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if p.pace != nil {
		if err := p.pace.Wait(ctx); err != nil {
			p.release(false, 0)
			return err
		}
	}
	return nil
}

// release frees a slot. refused says the DTA asked to slow down, with pause (0: none)
// before any request starts again.
func (p *auditPacer) release(refused bool, pause time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inFlight--
	switch {
	case refused:
		p.window = max(1, p.window/2)
		p.streak = 0
		if until := time.Now().Add(pause); until.After(p.resume) {
			p.resume = until
		}
	case p.window < p.workers:
		if p.streak++; p.streak >= p.window {
			p.window++
			p.streak = 0
		}
	}
	p.notify()
}

// RoundTrip sends req through inner, retrying as the package comment says. The answer's
// body is read here (the tries cover it too); it is at most auditMaxResponse bytes.
func (p *auditPacer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		return nil, errors.New("audit: only requests without a body are retried")
	}
	ctx := req.Context()
	var waited time.Duration
	for attempt := 0; ; attempt++ {
		if err := p.acquire(ctx); err != nil {
			return nil, err
		}
		resp, body, err := p.try(req.Clone(ctx))
		wait, reason, retry, refused := p.classify(resp, err, attempt)
		if !retry {
			p.release(false, 0)
			if err != nil {
				return nil, err
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
			return resp, nil
		}
		tooLong := refused && wait > p.maxRetryAfter
		pause := wait
		if !refused || tooLong { // the other requests need not wait for this one's backoff, nor for ever
			pause = 0
		}
		p.release(refused, pause)
		if refused {
			p.throttled.Add(1)
		}
		switch {
		case tooLong:
			return nil, fmt.Errorf("%s, asking to wait %v: longer than the auditor waits (%v); audit again later", reason, wait.Round(time.Second), p.maxRetryAfter)
		case attempt >= p.maxRetries:
			tries := "1 try"
			if attempt > 0 {
				tries = fmt.Sprintf("%d tries", attempt+1)
			}
			return nil, fmt.Errorf("%s; gave up after %s (%v waited)", reason, tries, waited.Round(time.Millisecond))
		}
		p.retries.Add(1)
		if p.onRetry != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			p.onRetry(status, reason, wait)
		}
		start := time.Now()
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, err
		}
		waited += time.Since(start)
		p.waited.Add(int64(time.Since(start)))
	}
}

// try sends one request and reads the whole answer.
func (p *auditPacer) try(req *http.Request) (*http.Response, []byte, error) {
	resp, err := p.inner.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // the outer client names the URL
			err = ue.Err
		}
		return nil, nil, err
	}
	defer resp.Body.Close()
	var body []byte
	if resp.StatusCode == http.StatusOK {
		body, err = io.ReadAll(resp.Body)
	} else {
		body, err = io.ReadAll(io.LimitReader(resp.Body, auditMaxErrorBody))
	}
	if err != nil {
		return nil, nil, err
	}
	return resp, body, nil
}

// classify says whether a try is retried, after how long, and whether the DTA refused
// it to slow the auditor down (429, 503).
func (p *auditPacer) classify(resp *http.Response, err error, attempt int) (wait time.Duration, reason string, retry, refused bool) {
	if err != nil {
		if !auditRetryableError(err) {
			return 0, "", false, false
		}
		return p.backoff(attempt), err.Error(), true, false
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		wait, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		if !ok {
			wait = p.backoff(attempt)
		} else if wait <= p.maxRetryAfter {
			wait += rand.N(p.backoffBase) // the workers must not all start again at once
		}
		return wait, fmt.Sprintf("the DTA answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)), true, true
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return p.backoff(attempt), fmt.Sprintf("the DTA answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)), true, false
	}
	return 0, "", false, false
}

// backoff is the wait before retry attempt+1: exponential, capped, with jitter over
// its upper half.
func (p *auditPacer) backoff(attempt int) time.Duration {
	d := p.backoffMax
	if attempt < 30 {
		d = min(p.backoffMax, p.backoffBase<<attempt)
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}

// auditRetryableError reports whether a failed try may succeed if sent again: the
// connection was reset or cut short. Not a refused connection, a TLS failure, a
// timeout or a cancellation.
func auditRetryableError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
