package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/httpx"
)

// dtaProbeTimeout bounds one probe of one DTA. It does not shrink with a short probe
// interval: a busy DTA that answers in a second is up, and calling it unreachable
// would refuse enrolments for nothing. A slow round only delays the next one.
const dtaProbeTimeout = 5 * time.Second

// dtaProbe keeps, for /readyz, /metrics and the requests that need the DTAs, whether
// each of the bundle's DTAs answers its own /readyz. Logins need no DTA; enrolments,
// permits and permit renewals do (the client collects a share from every DTA), and
// revocation notices go to every DTA. So a DTA that is down degrades the server (see
// Server.newReadiness) and those requests fail fast with a 503 naming it, while logins
// go on. In a threshold domain (t of n) those requests fail only while fewer than t
// DTAs are up: the client combines the shares of any t. The state is refreshed in the background, so neither /readyz nor a request
// makes a request of its own to a DTA, and neither can be used to flood them.
type dtaProbe struct {
	client *http.Client
	log    *slog.Logger
	up     *prometheus.GaugeVec
	// afterRound, if set, runs after each round (the server re-evaluates its readiness,
	// so that a DTA's outage is logged and counted when it is seen, not at the next
	// /readyz request).
	afterRound func()

	mu    sync.Mutex
	dtas  []bundle.DTA
	need  int              // DTAs a request needs: t in threshold mode, every one in additive mode
	gen   uint64           // counts setBundle calls: a round under an older bundle records nothing
	state map[uint32]error // nil: ready; absent: not probed yet
}

func newDTAProbe(b *bundle.Bundle, client *http.Client, log *slog.Logger, up *prometheus.GaugeVec) *dtaProbe {
	p := &dtaProbe{client: client, log: log, up: up}
	p.setBundle(b)
	return p
}

// setBundle makes the probe watch the DTAs of b (a successor bundle after a
// resharing); they count as not probed yet until the next round.
func (p *dtaProbe) setBundle(b *bundle.Bundle) {
	need := len(b.DTAs)
	if b.Mode == "threshold" {
		need = b.Threshold
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dtas, p.need, p.state = b.DTAs, need, map[uint32]error{}
	p.gen++
}

// run probes every DTA now and then every interval until ctx is cancelled.
func (p *dtaProbe) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p.round(ctx, dtaProbeTimeout)
		if p.afterRound != nil && ctx.Err() == nil {
			p.afterRound()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round probes every DTA at once and records the results.
func (p *dtaProbe) round(ctx context.Context, timeout time.Duration) {
	p.mu.Lock()
	dtas, gen := p.dtas, p.gen
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, d := range dtas {
		wg.Go(func() {
			err := p.probe(ctx, d.URL, timeout)
			if ctx.Err() != nil {
				return // stopping: not the DTA's fault
			}
			p.mu.Lock()
			if p.gen != gen {
				p.mu.Unlock()
				return // another bundle's DTAs now
			}
			prev, seen := p.state[d.Index]
			p.state[d.Index] = err
			p.mu.Unlock()
			label := strconv.FormatUint(uint64(d.Index), 10)
			if err != nil {
				p.up.WithLabelValues(label).Set(0)
				if !seen || prev == nil {
					p.log.Warn("DTA not ready", "dta", d.Index, "url", d.URL, "err", err)
				}
			} else {
				p.up.WithLabelValues(label).Set(1)
				if seen && prev != nil {
					p.log.Info("DTA ready again", "dta", d.Index, "url", d.URL)
				}
			}
		})
	}
	wg.Wait()
}

// probe asks one DTA's /readyz. The error is meant for /readyz, so it is short and
// names no internal detail of this server.
func (p *dtaProbe) probe(ctx context.Context, base string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/readyz", nil)
	if err != nil {
		return errors.New("bad URL")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return errors.New("unreachable")
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready (HTTP %d)", resp.StatusCode)
	}
	return nil
}

// status lists the DTAs whose last probe failed, as "DTA 2 unreachable": short, naming
// no URL (see probe), with the number of DTAs and the number a request needs, read at
// once. A DTA not probed yet (the first round is under way) is not listed: the request
// that needs it finds out by itself.
func (p *dtaProbe) status() (bad []string, n, need int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range p.dtas {
		if err := p.state[d.Index]; err != nil {
			bad = append(bad, fmt.Sprintf("DTA %d %v", d.Index, err))
		}
	}
	return bad, len(p.dtas), p.need
}

// check is the "dtas" readiness check, which degrades the server: nil while every DTA
// is ready, else which ones are not.
func (p *dtaProbe) check(context.Context) error {
	bad, n, need := p.status()
	switch {
	case len(bad) == 0:
		return nil
	case n-len(bad) >= need && need < n:
		return fmt.Errorf("%s: enrolments and permits go on with %d of the %d DTAs, logins go on", strings.Join(bad, ", "), need, n)
	}
	return errors.New(strings.Join(bad, ", ") + ": enrolments and permits are unavailable, logins go on")
}

// unavailable is the error of a request that needs every DTA (what says which, e.g.
// "enrolment needs every DTA of the domain") while some are down: 503 "dta_unavailable"
// naming them, with a Retry-After of one probe interval. nil while every DTA is ready,
// or in a threshold domain while t of them are ("every DTA" in what then reads "t of
// the n DTAs").
func (p *dtaProbe) unavailable(w http.ResponseWriter, retry time.Duration, what, after string) error {
	bad, n, need := p.status()
	if n-len(bad) >= need {
		return nil
	}
	if need < n {
		what = strings.Replace(what, "every DTA", fmt.Sprintf("%d of the %d DTAs", need, n), 1)
	}
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retry.Round(time.Second)/time.Second))))
	return httpx.Errorf(http.StatusServiceUnavailable, "dta_unavailable", "%s: %s; %s", strings.Join(bad, ", "), what, after)
}
