package server

import (
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// TestBatchedLogins sends concurrent logins, right and wrong PINs and an unknown
// identity mixed, to a server that batches pass 2: every login gets the answer it
// would get alone (the right PINs a key that the client's server proof confirms), and
// the batches held more than one pass 2. The pass 2 are sent together, as under load.
func TestBatchedLogins(t *testing.T) {
	e := newEnv(t, 0)
	h := e.start(t, t.TempDir(), false, func(c *Config) { c.LoginBatchWindow = 50 * time.Millisecond })
	good := []*tclient{
		h.enrol(t, wire.EnrolmentRequest{ID: "a"}, "1111"),
		h.enrol(t, wire.EnrolmentRequest{ID: "b"}, "2222"),
	}
	wrong := h.enrol(t, wire.EnrolmentRequest{ID: "c"}, "3333")
	unknown := *wrong
	unknown.id = pairing.IDHash{0xbe, 0xef}

	type attempt struct {
		c      *tclient
		pin    string
		status int
	}
	var attempts []attempt
	for i := range 24 {
		attempts = append(attempts, attempt{good[i%2], []string{"1111", "2222"}[i%2], 200})
	}
	attempts = append(attempts, attempt{wrong, "0000", 401}, attempt{wrong, "0000", 401}, attempt{&unknown, "3333", 401})
	results := make([]loginResult, len(attempts))
	var wg, ready sync.WaitGroup
	ready.Add(len(attempts))
	together := func() { ready.Done(); ready.Wait() } // every pass 2 sent at once
	for i, a := range attempts {
		wg.Go(func() { results[i] = h.login(t, a.c, a.pin, loginOpts{beforeFinish: together}) })
	}
	wg.Wait()
	tries := map[int]bool{}
	for i, a := range attempts {
		if results[i].status != a.status {
			t.Fatalf("login %d: status %d, want %d: %s", i, results[i].status, a.status, results[i].body)
		}
		if a.c == wrong {
			tries[results[i].failure.TriesLeft] = true
		}
	}
	if !tries[1] || !tries[2] {
		t.Fatalf("the wrong PINs were answered with tries left %v, want 2 and 1", tries)
	}
	count, sum := histogram(t, h.metrics(t), "polyroot_server_login_batch_size")
	if sum != float64(len(attempts)) || count >= sum {
		t.Fatalf("batches: %v batches for %v pass 2, want fewer batches than logins", count, sum)
	}
	t.Logf("%d logins in %v batches", len(attempts), count)
}

// histogram returns the count and the sum of the histogram name in a metrics scrape.
func histogram(t *testing.T, scrape, name string) (count, sum float64) {
	t.Helper()
	for _, part := range []struct {
		suffix string
		v      *float64
	}{{"_count", &count}, {"_sum", &sum}} {
		m := regexp.MustCompile(`(?m)^` + name + part.suffix + ` (\S+)$`).FindStringSubmatch(scrape)
		if m == nil {
			t.Fatalf("no %s%s in the metrics", name, part.suffix)
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		*part.v = v
	}
	return count, sum
}

// TestBatcherCollect checks how a batch is put together: what is waiting, up to the
// size; more within the window only while the server is loaded; one at a time while
// failures are frequent.
func TestBatcherCollect(t *testing.T) {
	m := newMetrics(nil)
	cases := map[string]struct {
		waiting, size int
		loaded        bool
		failures      float64
		arrive        int // jobs arriving during the window
		want          int
	}{
		"ok/idle-alone":            {waiting: 0, size: 64, want: 1},
		"ok/takes-waiting":         {waiting: 5, size: 64, arrive: 3, want: 9},
		"ok/loaded-waits-window":   {waiting: 0, size: 64, loaded: true, arrive: 3, want: 4},
		"ok/up-to-size":            {waiting: 10, size: 4, want: 4},
		"fallback/frequent-fails":  {waiting: 10, size: 64, loaded: true, failures: 0.2, want: 1},
		"ok/rare-failures-batched": {waiting: 10, size: 64, failures: 0.01, want: 11},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b := &batcher{queue: make(chan *batchJob, 64), size: tc.size, window: 200 * time.Millisecond,
				sizes: m.batchSize, wait: m.batchWait, loaded: tc.loaded, failures: tc.failures}
			for range tc.waiting {
				b.queue <- &batchJob{}
			}
			go func() {
				for range tc.arrive {
					time.Sleep(5 * time.Millisecond)
					b.queue <- &batchJob{}
				}
			}()
			size, loaded := b.batchSize()
			got := b.collect([]*batchJob{{}}, size, loaded)
			if len(got) != tc.want {
				t.Fatalf("batch of %d, want %d", len(got), tc.want)
			}
		})
	}
}
