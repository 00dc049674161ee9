package server

import (
	"crypto/rand"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/polyroot/polyroot/pairing"
)

// Defaults of the batched verification of pass 2 (Config.LoginBatchSize and
// LoginBatchWindow).
const (
	defaultBatchSize   = 64
	defaultBatchWindow = 10 * time.Millisecond
	// batchFailureLimit is the share of failing pass 2 (wrong PINs and refused
	// identities) above which the batcher checks each pass 2 alone: a failing item
	// costs its batch about 2·log₂(size) extra pairing checks while it is split, so
	// with more than about one in 16 failing, batches would cost more than single
	// checks and an attacker sending bad messages would slow the honest logins down.
	// The share is known only after a batch: one formed before it rose is bounded by
	// pairing.VerifyBatch instead (size + 2·bits(size) checks at most).
	batchFailureLimit = 1.0 / 16
	// batchFailureWeight is the weight of the newest item in the failure share (an
	// exponential average over about the last 64 items).
	batchFailureWeight = 1.0 / 64
	// defaultLoginPointCache is Config.LoginPointCache's default.
	defaultLoginPointCache = 1 << 16
)

// A batcher checks the pass-2 equations of concurrent logins together with
// pairing.VerifyBatch: two multi-scalar multiplications and one 2-pairing for up to
// size items instead of one 2-pairing each. The key schedule stays with each login
// (ServerSession.Conclude), so only the equation is shared.
//
// It takes what has arrived: one collector forms the batches and hands each to a
// free checker (one per CPU). A pass 2 that finds the server idle is checked at once,
// so an idle server adds no latency; while others are waiting too (the server is
// loaded) the collector takes more for at most window, or until size, and while
// every checker is busy the batch in hand keeps growing up to size. A login therefore
// waits at most window plus the checking of the batches ahead of it, which under load
// is less than it would wait for a CPU behind unbatched checks. One collector for all
// checkers keeps the batches as large as the arrivals allow: a collector per checker
// would split them. While failures are frequent (batchFailureLimit) every pass 2 is
// checked alone.
//
// A refused identity's pass 2 goes into a batch as a pair that never verifies
// (pairing.BatchItem.Reject): it costs its batch what a wrong PIN costs, so neither
// the answer nor its time tells a refused identity from a wrong PIN, nor a blocked
// identity's right PIN from a wrong one.
type batcher struct {
	queue   chan *batchJob
	batches chan []*batchJob // unbuffered: a batch goes only to a free checker
	size    int
	window  time.Duration
	stop    chan struct{}
	done    sync.WaitGroup

	mu       sync.Mutex
	failures float64 // exponential average of the failing share
	loaded   bool    // the last batch had more than one item

	sizes, wait prometheus.Histogram
}

type batchJob struct {
	item   pairing.BatchItem
	queued time.Time
	result chan error
}

func newBatcher(size int, window time.Duration, m *metrics) *batcher {
	b := &batcher{
		queue:   make(chan *batchJob, 4*size),
		batches: make(chan []*batchJob),
		size:    size,
		window:  window,
		stop:    make(chan struct{}),
		sizes:   m.batchSize,
		wait:    m.batchWait,
	}
	b.done.Add(1)
	go b.formBatches()
	for range runtime.GOMAXPROCS(0) {
		b.done.Add(1)
		go b.checkBatches()
	}
	return b
}

// verify checks p2 in a batch and returns its result for sess's Conclude. reject
// marks a login to refuse whatever p2 holds.
func (b *batcher) verify(sess *pairing.ServerSession, p2 *pairing.Pass2, reject bool) error {
	j := &batchJob{item: pairing.BatchItem{Session: sess, Pass2: p2, Reject: reject}, queued: time.Now(), result: make(chan error, 1)}
	b.queue <- j
	return <-j.result
}

// close stops the workers. No verify may be running or follow.
func (b *batcher) close() {
	close(b.stop)
	b.done.Wait()
}

// formBatches is the collector: it forms each batch (collect) and hands it to a free
// checker, adding what arrives while none is free.
func (b *batcher) formBatches() {
	defer b.done.Done()
	for {
		var first *batchJob
		select {
		case <-b.stop:
			return
		case first = <-b.queue:
		}
		size, loaded := b.batchSize() // as of the first pass 2 in
		jobs := b.collect(append(make([]*batchJob, 0, size), first), size, loaded)
		for handed := false; !handed; {
			more := b.queue
			if len(jobs) >= size {
				more = nil // full: only hand it over
			}
			select {
			case b.batches <- jobs:
				handed = true
			case j := <-more:
				jobs = append(jobs, j)
			case <-b.stop:
				return
			}
		}
	}
}

// checkBatches is a checker: it checks the batches the collector hands it.
func (b *batcher) checkBatches() {
	defer b.done.Done()
	for {
		select {
		case <-b.stop:
			return
		case jobs := <-b.batches:
			b.check(jobs)
		}
	}
}

// batchSize is the most pass 2 a batch takes now (1 while failures are frequent), and
// whether the server was loaded at the last batch.
func (b *batcher) batchSize() (size int, loaded bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures > batchFailureLimit {
		return 1, b.loaded
	}
	return b.size, b.loaded
}

// collect adds to jobs what is waiting, and while the server is loaded (or was at the
// last batch) what arrives within the window, up to size (batchSize).
func (b *batcher) collect(jobs []*batchJob, size int, loaded bool) []*batchJob {
	n := len(jobs)
	jobs = b.drain(jobs, size)
	// Let the goroutines that are ready to run go first: under load, they are
	// handlers on their way here with a pass 2 (on one CPU, all of them).
	runtime.Gosched()
	jobs = b.drain(jobs, size)
	loaded = loaded || len(jobs) > n
	if len(jobs) == size || !loaded || b.window <= 0 {
		return jobs
	}
	timer := time.NewTimer(b.window)
	defer timer.Stop()
	for len(jobs) < size {
		select {
		case j := <-b.queue:
			jobs = append(jobs, j)
		case <-timer.C:
			return jobs
		}
	}
	return jobs
}

// drain adds the jobs waiting in the queue, up to size.
func (b *batcher) drain(jobs []*batchJob, size int) []*batchJob {
	for len(jobs) < size {
		select {
		case j := <-b.queue:
			jobs = append(jobs, j)
		default:
			return jobs
		}
	}
	return jobs
}

func (b *batcher) check(jobs []*batchJob) {
	items := make([]pairing.BatchItem, len(jobs))
	for i, j := range jobs {
		items[i] = j.item
	}
	results := pairing.VerifyBatch(rand.Reader, items)
	now := time.Now()
	failed := 0
	for i, j := range jobs {
		if results[i] != nil {
			failed++
		}
		b.wait.Observe(now.Sub(j.queued).Seconds())
		j.result <- results[i]
	}
	b.sizes.Observe(float64(len(jobs)))
	weight := min(1, float64(len(jobs))*batchFailureWeight)
	b.mu.Lock()
	b.failures += weight * (float64(failed)/float64(len(jobs)) - b.failures)
	b.loaded = len(jobs) > 1
	b.mu.Unlock()
}
