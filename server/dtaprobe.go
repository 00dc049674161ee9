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
)

// dtaProbeTimeout bounds one probe of one DTA.
const dtaProbeTimeout = 5 * time.Second

// dtaProbe keeps, for /readyz and /metrics, whether each of the bundle's DTAs answers
// its own /readyz. Logins need no DTA, but enrolments, permit renewals and revocation
// notices do: the server is ready only while enough DTAs are (all of them in additive
// mode, t in threshold mode). The state is refreshed in the background, so /readyz
// never makes a request of its own and cannot be used to flood the DTAs.
type dtaProbe struct {
	dtas   []bundle.DTA
	needed int
	client *http.Client
	log    *slog.Logger
	up     *prometheus.GaugeVec

	mu    sync.Mutex
	state map[uint32]error // nil: ready; absent: not probed yet
}

func newDTAProbe(b *bundle.Bundle, client *http.Client, log *slog.Logger, up *prometheus.GaugeVec) *dtaProbe {
	needed := len(b.DTAs)
	if b.Mode == "threshold" {
		needed = int(b.Threshold)
	}
	return &dtaProbe{dtas: b.DTAs, needed: needed, client: client, log: log, up: up, state: map[uint32]error{}}
}

// run probes every DTA now and then every interval until ctx is cancelled.
func (p *dtaProbe) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p.round(ctx, min(interval, dtaProbeTimeout))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round probes every DTA at once and records the results.
func (p *dtaProbe) round(ctx context.Context, timeout time.Duration) {
	var wg sync.WaitGroup
	for _, d := range p.dtas {
		wg.Go(func() {
			err := p.probe(ctx, d.URL, timeout)
			if ctx.Err() != nil {
				return // stopping: not the DTA's fault
			}
			p.mu.Lock()
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

// check is the "dtas" readiness check: enough DTAs ready, else which ones are not.
func (p *dtaProbe) check(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ready := 0
	var bad []string
	for _, d := range p.dtas {
		err, seen := p.state[d.Index]
		switch {
		case !seen:
			bad = append(bad, fmt.Sprintf("DTA %d (%s) not probed yet", d.Index, d.URL))
		case err != nil:
			bad = append(bad, fmt.Sprintf("DTA %d (%s) %v", d.Index, d.URL, err))
		default:
			ready++
		}
	}
	if ready >= p.needed {
		return nil
	}
	return fmt.Errorf("%d of %d DTAs ready, %d needed: %s", ready, len(p.dtas), p.needed, strings.Join(bad, ", "))
}
