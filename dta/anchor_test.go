package dta

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/polyroot/polyroot/internal/ticket"
)

// fakeAnchor records what the service hands an Anchor and polls the checkpoint.
type fakeAnchor struct {
	mu      sync.Mutex
	origin  string
	size    uint64
	root    []byte
	started chan struct{}
	stopped atomic.Bool
	gauge   prometheus.Gauge
	down    atomic.Bool // what Ready reports
}

func (f *fakeAnchor) Ready() error {
	if f.down.Load() {
		return errors.New("unreachable since 10:00 (test)")
	}
	return nil
}

func (f *fakeAnchor) Run(ctx context.Context, origin string, checkpoint func(context.Context) (uint64, []byte, error)) error {
	f.mu.Lock()
	f.origin = origin
	f.mu.Unlock()
	close(f.started)
	for {
		if size, root, err := checkpoint(ctx); err == nil {
			f.mu.Lock()
			f.size, f.root = size, root
			f.mu.Unlock()
			f.gauge.Set(float64(size))
		}
		select {
		case <-ctx.Done():
			f.stopped.Store(true)
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (f *fakeAnchor) Describe(ch chan<- *prometheus.Desc) { f.gauge.Describe(ch) }
func (f *fakeAnchor) Collect(ch chan<- prometheus.Metric) { f.gauge.Collect(ch) }

func TestAnchorHook(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	d.stop(nd) // restart it with an Anchor
	fa := &fakeAnchor{started: make(chan struct{}),
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "polyroot_dta_test_anchor_size", Help: "test"})}
	d.start(nd, func(c *Config) { c.Anchor = fa })
	svc := nd.svc
	select {
	case <-fa.started:
	case <-time.After(5 * time.Second):
		t.Fatal("New did not start the Anchor")
	}
	if rec := svc.Record(); fa.origin != rec.LogOrigin {
		t.Fatalf("Anchor got origin %q, want %q", fa.origin, rec.LogOrigin)
	}

	// Issue through the handler; the Anchor's checkpoint follows the log.
	d.issue(nd, "/v1/shares/client", d.ticket(ticket.KindClient, newID(t, "anchor@example.com")))
	deadline := time.Now().Add(10 * time.Second)
	for {
		fa.mu.Lock()
		size, root := fa.size, fa.root
		fa.mu.Unlock()
		if size >= 1 && len(root) == 32 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Anchor's checkpoint stayed at size %d", size)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(nd.metrics(t), "polyroot_dta_test_anchor_size") {
		t.Fatal("the metrics do not include the Anchor's")
	}

	// The chain degrades the DTA, it does not take it out of rotation: /readyz stays
	// 200 with status "degraded" naming the chain, the gauge drops, and issuing goes on.
	readyz := func() (int, string) {
		resp, err := http.Get(nd.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := readyz(); code != 200 || !strings.Contains(body, `"status":"ready"`) || !strings.Contains(body, `"chain":"ok"`) {
		t.Fatalf("readyz with the chain up: %d %s", code, body)
	}
	fa.down.Store(true)
	if code, body := readyz(); code != 200 || !strings.Contains(body, `"status":"degraded"`) ||
		!strings.Contains(body, `"chain":"degraded: unreachable since 10:00 (test); issuing goes on`) {
		t.Fatalf("readyz with the chain down: %d %s", code, body)
	}
	if m := nd.metrics(t); !strings.Contains(m, `polyroot_dta_dependency_up{dependency="chain"} 0`) ||
		!strings.Contains(m, `polyroot_dta_dependency_up{dependency="storage"} 1`) {
		t.Fatalf("metrics with the chain down:\n%s", m)
	}
	d.issue(nd, "/v1/shares/client", d.ticket(ticket.KindClient, newID(t, "chainless@example.com")))
	fa.down.Store(false)
	if code, body := readyz(); code != 200 || !strings.Contains(body, `"status":"ready"`) {
		t.Fatalf("readyz after the chain came back: %d %s", code, body)
	}
	if m := nd.metrics(t); !strings.Contains(m, `polyroot_dta_dependency_up{dependency="chain"} 1`) {
		t.Fatalf("metrics after the chain came back:\n%s", m)
	}

	d.stop(nd) // closes the service
	if !fa.stopped.Load() {
		t.Fatal("Close returned before the Anchor stopped")
	}
}
