package bench

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bls "github.com/consensys/gnark-crypto/ecc/bls12-381"

	"github.com/polyroot/polyroot/internal/testbin"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
	"github.com/polyroot/polyroot/server"
)

// BenchmarkServerLoginCore is everything the pairing core of the auth server does per
// login, in process: decode pass 1, the challenge (and its encoding), decode pass 2,
// Finish (the pairing check, the key pairing, the key schedule, the tags) and the
// encoding of the answer. No HTTP, no store, no access token. The clients' work runs
// with the timer stopped, 64 logins at a time. Compare with
// BenchmarkLimitPairingCheckFixedQ in the same run. On Linux it also reports
// cpu-ns/op, the CPU time of the timed work on its own thread: on a loaded machine,
// where ns/op counts the waits for a CPU too, that is the figure to compare (with
// BenchmarkLimitCPU's).
func BenchmarkServerLoginCore(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f := getFixture(b)
	var cpu int64
	cpuOK := true
	timed := func(work func()) {
		t0, ok0 := threadCPU()
		work()
		t1, ok1 := threadCPU()
		cpu += t1 - t0
		cpuOK = cpuOK && ok0 && ok1
	}
	const chunk = 64
	type login struct {
		cs  *pairing.ClientSession
		ss  *pairing.ServerSession
		msg []byte
	}
	logins := make([]login, chunk)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(chunk, b.N-done)
		b.StopTimer()
		for i := range n {
			cs, p1, err := f.clients[(done+i)%len(f.clients)].Start(nil, testPIN)
			if err != nil {
				b.Fatal(err)
			}
			logins[i].cs = cs
			if logins[i].msg, err = p1.MarshalBinary(); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		timed(func() {
			for i := range n { // server: pass 1 to challenge
				p1 := new(pairing.Pass1)
				if err := p1.UnmarshalBinary(logins[i].msg); err != nil {
					b.Fatal(err)
				}
				ss, ch, err := f.verifier.Challenge(nil, p1, f.now)
				if err != nil {
					b.Fatal(err)
				}
				logins[i].ss = ss
				if logins[i].msg, err = ch.MarshalBinary(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.StopTimer()
		for i := range n {
			ch := new(pairing.Challenge)
			if err := ch.UnmarshalBinary(logins[i].msg); err != nil {
				b.Fatal(err)
			}
			p2, err := logins[i].cs.Respond(ch, nil)
			if err != nil {
				b.Fatal(err)
			}
			if logins[i].msg, err = p2.MarshalBinary(); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		timed(func() {
			for i := range n { // server: pass 2 to finish
				p2 := new(pairing.Pass2)
				if err := p2.UnmarshalBinary(logins[i].msg); err != nil {
					b.Fatal(err)
				}
				fin, key, err := logins[i].ss.Finish(p2, nil)
				if err != nil || len(key) != pairing.SessionKeySize {
					b.Fatalf("Finish: %v", err)
				}
				if logins[i].msg, err = fin.MarshalBinary(); err != nil {
					b.Fatal(err)
				}
			}
		})
		done += n
	}
	if cpuOK {
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkLimitCPU is BenchmarkLimitPairingCheckFixedQ with the cpu-ns/op metric of
// BenchmarkServerLoginCore: the floor to compare that benchmark's CPU time with.
func BenchmarkLimitCPU(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	points, linesQ, linesSQ := limitSetup(b)
	b.ReportAllocs()
	b.ResetTimer()
	t0, ok0 := threadCPU()
	for range b.N {
		ok, err := bls.PairingCheckFixedQ(points, []lines{linesQ, linesSQ})
		if err != nil || !ok {
			b.Fatalf("pairing check failed: %v %v", ok, err)
		}
	}
	if t1, ok1 := threadCPU(); ok0 && ok1 {
		b.ReportMetric(float64(t1-t0)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkServerLogin is everything the auth server does per login, in process,
// through its HTTP handler without a network: decoding both passes from JSON, the
// challenge and the session kept in the store, the check of pass 2, the key schedule
// and the tags, the failure counter's admission, and the signed access token. 64
// clients log in at once (one goroutine each, their own work with the timer stopped);
// batch=1 checks every pass 2 alone (LoginBatchSize 1), batch=64 lets the server check
// them together (LoginBatchSize 64, with a window long enough that all 64 meet). The
// metric logins/batch is the batch size the server saw; cpu-ns/op is the process's
// CPU time in the timed work per login. Compare batch=64 with
// BenchmarkLimitPairingCheckFixedQ (BenchmarkLimitCPU's cpu-ns/op) in the same run.
func BenchmarkServerLogin(b *testing.B) {
	for _, size := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			benchServerLogin(b, func(c *server.Config) {
				c.LoginBatchSize, c.LoginBatchWindow = size, 50*time.Millisecond
			})
		})
	}
}

// BenchmarkServerLoginPostgres is BenchmarkServerLogin/batch=64 with the server's
// state in PostgreSQL (a throw-away cluster on loopback, as the tests start it):
// compare its cpu-ns/op (the server process's CPU; PostgreSQL's own is not counted)
// and ns/op with BenchmarkServerLogin/batch=64 for the store's overhead per login.
func BenchmarkServerLoginPostgres(b *testing.B) {
	b.Run("batch=64", func(b *testing.B) {
		pg := testbin.StartPostgres(b)
		url := pg.CreateDatabase(b)
		benchServerLogin(b, func(c *server.Config) {
			c.LoginBatchSize, c.LoginBatchWindow = 64, 50*time.Millisecond
			c.Store, c.DatabaseURL, c.Migrate = "postgres", url, true
		})
	})
}

// benchServerLogin runs 64 logins at a time through the handler of a server
// configured by mod.
func benchServerLogin(b *testing.B, mod func(*server.Config)) {
	sl := newServerLogins(b, mod)
	// The floor, run between the chunks of logins (timer stopped) so that both are
	// measured in the same stretches of time: on a shared machine the same code's
	// speed moves by tens of percent from one minute to the next, and a ratio of two
	// benchmarks run one after the other moves with it.
	points, linesQ, linesSQ := limitSetup(b)
	sl.limit = func() {
		if ok, err := bls.PairingCheckFixedQ(points, []lines{linesQ, linesSQ}); err != nil || !ok {
			b.Fatalf("pairing check failed: %v %v", ok, err)
		}
	}
	_, batches0 := sl.fs.batches(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	cpu, cpuOK := sl.run(b, b.N, true)
	logins, batches := sl.fs.batches(b)
	if batches > batches0 {
		b.ReportMetric(logins/(batches-batches0), "logins/batch")
	}
	if cpuOK {
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		if sl.limitCPU > 0 {
			b.ReportMetric(float64(cpu)/float64(sl.limitCPU), "x-limit")
		}
	}
}

// serverLogins are logins through the handler of a server in process, 64 at a time,
// each by a goroutine of its own: BenchmarkServerLogin's work.
type serverLogins struct {
	fs       *failureServer
	clients  []*pairing.Client
	sessions []*pairing.ClientSession
	bodies   [][]byte
	answers  []*httptest.ResponseRecorder
	// limit, if set, is run once per login between the chunks, with the process's CPU
	// time of those runs added to limitCPU: the floor measured in the same stretches
	// of time as the logins (x-limit).
	limit    func()
	limitCPU int64
}

// serverLoginChunk is how many logins serverLogins runs at once.
const serverLoginChunk = 64

// newServerLogins starts a server configured by mod and enrols the clients.
func newServerLogins(b *testing.B, mod func(*server.Config)) *serverLogins {
	sl := &serverLogins{fs: newBenchServer(b, mod), clients: make([]*pairing.Client, serverLoginChunk),
		sessions: make([]*pairing.ClientSession, serverLoginChunk), bodies: make([][]byte, serverLoginChunk),
		answers: make([]*httptest.ResponseRecorder, serverLoginChunk)}
	for i := range sl.clients {
		sl.clients[i] = sl.fs.enrol(b, fmt.Sprintf("user%d", i))
	}
	return sl
}

// run does n logins and returns this process's CPU time in the server's part of them
// (the handler's work on both passes; the clients' is left out), and whether it could
// be read. If timer, b's timer runs during the server's part only; otherwise run
// leaves the timer alone.
func (sl *serverLogins) run(b *testing.B, n int, timer bool) (cpu int64, ok bool) {
	ok = true
	timed := func(n int, path string) {
		t0, ok0 := processCPU()
		if timer {
			b.StartTimer()
		}
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { sl.answers[i] = sl.fs.post(b, path, sl.bodies[i]) })
		}
		wg.Wait()
		if timer {
			b.StopTimer()
		}
		t1, ok1 := processCPU()
		cpu += t1 - t0
		ok = ok && ok0 && ok1
		for i := range n {
			if sl.answers[i].Code != http.StatusOK {
				b.Fatalf("%s: %d %s", path, sl.answers[i].Code, sl.answers[i].Body)
			}
		}
	}
	for done := 0; done < n; done += serverLoginChunk {
		n := min(serverLoginChunk, n-done)
		for i := range n {
			cs, p1, err := sl.clients[i].Start(nil, testPIN)
			if err != nil {
				b.Fatal(err)
			}
			sl.sessions[i] = cs
			enc, _ := p1.MarshalBinary()
			sl.bodies[i], _ = json.Marshal(wire.StartRequest{Pass1: enc})
		}
		timed(n, "/v1/login/start")
		for i := range n {
			var sr wire.StartResponse
			var ch pairing.Challenge
			if err := json.Unmarshal(sl.answers[i].Body.Bytes(), &sr); err != nil {
				b.Fatal(err)
			}
			if err := ch.UnmarshalBinary(sr.Challenge); err != nil {
				b.Fatal(err)
			}
			p2, err := sl.sessions[i].Respond(&ch, nil)
			if err != nil {
				b.Fatal(err)
			}
			enc, _ := p2.MarshalBinary()
			sl.bodies[i], _ = json.Marshal(wire.FinishRequest{Pass2: enc})
		}
		timed(n, "/v1/login/finish")
		for i := range n {
			var fr wire.FinishResponse
			var fin pairing.Finish
			if err := json.Unmarshal(sl.answers[i].Body.Bytes(), &fr); err != nil || fr.AccessToken == "" {
				b.Fatalf("no access token: %v", err)
			}
			if err := fin.UnmarshalBinary(fr.Finish); err != nil {
				b.Fatal(err)
			}
			if _, err := sl.sessions[i].Finish(&fin); err != nil {
				b.Fatalf("server proof: %v", err)
			}
		}
		if sl.limit != nil {
			t0, ok0 := processCPU()
			for range n {
				sl.limit()
			}
			t1, ok1 := processCPU()
			sl.limitCPU += t1 - t0
			ok = ok && ok0 && ok1
		}
		runtime.GC() // the clients' garbage, not the server's, before the clock runs
	}
	return cpu, ok
}

// batches returns the sum and the count of the server's batch-size histogram: pass 2
// checked in batches, and batches.
func (fs *failureServer) batches(b *testing.B) (logins, batches float64) {
	rec := httptest.NewRecorder()
	fs.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "polyroot_server_login_batch_size_sum "); ok {
			logins, _ = strconv.ParseFloat(v, 64)
		} else if v, ok := strings.CutPrefix(line, "polyroot_server_login_batch_size_count "); ok {
			batches, _ = strconv.ParseFloat(v, 64)
		}
	}
	return logins, batches
}
