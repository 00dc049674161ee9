package bench

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/testbin"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
	"github.com/polyroot/polyroot/server"
)

// loadClients is the number of concurrent clients of BenchmarkLoginLoad, each an
// identity of its own on a keep-alive connection of its own.
const loadClients = 256

// BenchmarkLoginLoad is the auth server under load, measured as a process of its own:
// a real `polyroot server serve` child (plain HTTP on loopback, its default batching
// of pass 2, its state database on /dev/shm as for BenchmarkLoginFailure, the
// GOMAXPROCS of the environment) and loadClients goroutines in this process, each an
// enrolled identity logging in again and again with net/http over keep-alive
// connections, b.N whole logins in all. Each client makes its pass 1 with the clock
// stopped (Client.Start: a third of its crypto, none of the server's), then sends it,
// answers the challenge, sends pass 2 and checks the server's answer. Two ways:
//
//   - steady: each client goes on at once with its next login. On a machine of two
//     CPUs, one for the server and one for the clients, the clients' crypto (about
//     1.7 ms per login) keeps the server short of full load, so its batches stay small
//     and move with what the clients' CPU gets from its neighbours;
//   - burst: the clients send their pass 1 together, answer, and send their pass 2
//     together once all have answered, so loadClients pass 2 arrive at once: the
//     server under full load, as it is when its capacity matters, whatever the
//     clients' CPU. The server's CPU does not run while it waits for them.
//
// Metrics:
//
//   - server-cpu-ns/op: the child's CPU time (all its threads, user and system) over
//     the timed logins, per login;
//   - x-serverlogin: server-cpu-ns/op ÷ the CPU time per login of
//     BenchmarkServerLogin/batch=64's work (target ≤ 1.25), which this benchmark does
//     in process after every loadRound logins, on the CPU the server is kept on: the
//     two come from the same stretches of time on the same CPU, so unlike the ratio of
//     two benchmarks run minutes apart, the machine's load does not move it;
//   - client-cpu-ns/op: this process's, the clients' work (their crypto after pass 1
//     and their side of HTTP);
//   - p50-ms, p99-ms: steady, a login as its client sees it, from sending pass 1 to its
//     check of the server's answer to pass 2, its own crypto included; burst, the
//     answer to pass 2 when loadClients are sent at once;
//   - logins/s, and logins/batch and batch-wait-ms (the mean wait of a pass 2 for its
//     batch) from the child's metrics.
//
// Each client logs in once before the clock runs (connections open, login points in
// the server's cache). The clients' tokens are made from the DTAs' master shares
// (minter), so the DTAs are not on the logins' path.
func BenchmarkLoginLoad(b *testing.B) {
	ls := startLoadServer(b)
	ref := newServerLogins(b, func(c *server.Config) {
		c.LoginBatchSize, c.LoginBatchWindow = serverLoginChunk, 50*time.Millisecond
	})
	ls.steady(b, ls.prepare(b, len(ls.clients)), make([]time.Duration, len(ls.clients))) // warm connections and caches
	b.Run("steady", func(b *testing.B) { ls.measure(b, ref, ls.steady) })
	b.Run("burst", func(b *testing.B) { ls.measure(b, ref, ls.burst) })
}

// measure runs b.N logins in rounds of loadRound with round, each prepared with the
// clock stopped and followed by refLogins reference logins, and reports
// BenchmarkLoginLoad's metrics.
func (ls *loadServer) measure(b *testing.B, ref *serverLogins, round func(*testing.B, []preparedLogin, []time.Duration)) {
	// The server and the reference logins in process run on one CPU: see pinPID.
	const cpu = 0
	pinned, apart := pinPID(ls.child.Pid(), cpu), true
	lat := make([]time.Duration, b.N)
	m0 := ls.metrics(b)
	var serverCPU, clientCPU, refCPU int64
	var wall time.Duration
	refs, cpuOK := 0, true
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(loadRound, b.N-done)
		b.StopTimer()
		logins := ls.prepare(b, n)
		b.StartTimer()
		s0, okS0 := pidCPU(ls.child.Pid())
		c0, okC0 := processCPU()
		start := time.Now()
		apart = offCPU(cpu, func() { round(b, logins, lat[done:done+n]) }) && apart
		wall += time.Since(start)
		s1, okS1 := pidCPU(ls.child.Pid())
		c1, okC1 := processCPU()
		serverCPU, clientCPU = serverCPU+s1-s0, clientCPU+c1-c0
		cpuOK = cpuOK && okS0 && okS1 && okC0 && okC1
		done += n

		b.StopTimer()
		pinned = onCPU(cpu, func() {
			c, ok := ref.run(b, refLogins, false)
			refCPU, cpuOK = refCPU+c, cpuOK && ok
		}) && pinned
		refs += refLogins
		b.StartTimer()
	}
	b.StopTimer()
	m1 := ls.metrics(b)
	if !cpuOK {
		b.Fatal("the CPU time of a process cannot be read")
	}
	if !pinned {
		b.Log("the server and the reference logins could not be kept on one CPU: x-serverlogin is noisier")
	}
	if !apart {
		b.Log("the clients could not be kept off the server's CPU: x-serverlogin is higher")
	}
	b.ReportMetric(float64(serverCPU)/float64(b.N), "server-cpu-ns/op")
	b.ReportMetric(float64(clientCPU)/float64(b.N), "client-cpu-ns/op")
	b.ReportMetric(float64(serverCPU)/float64(b.N)/(float64(refCPU)/float64(refs)), "x-serverlogin")
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(b.N)/wall.Seconds(), "logins/s")
	if batches := m1[metricBatchCount] - m0[metricBatchCount]; batches > 0 {
		b.ReportMetric((m1[metricBatchSum]-m0[metricBatchSum])/batches, "logins/batch")
	}
	if waits := m1[metricWaitCount] - m0[metricWaitCount]; waits > 0 {
		b.ReportMetric(1e3*(m1[metricWaitSum]-m0[metricWaitSum])/waits, "batch-wait-ms")
	}
}

// steady completes the logins prepared, each client those at its index modulo
// loadClients one after the other, and records the time each took.
func (ls *loadServer) steady(b *testing.B, logins []preparedLogin, lat []time.Duration) {
	ls.eachClient(b, func(k int) error {
		for i := k; i < len(logins); i += len(ls.clients) {
			t0 := time.Now()
			ch, err := ls.sendPass1(logins[i])
			if err != nil {
				return err
			}
			p2, err := logins[i].session.Respond(ch, nil)
			if err != nil {
				return err
			}
			if err := ls.sendPass2(logins[i], p2); err != nil {
				return err
			}
			lat[i] = time.Since(t0)
		}
		return nil
	})
}

// burst completes the logins prepared in waves of loadClients: every client sends its
// pass 1 and answers the challenge, then, once all have, every client sends its pass 2
// at once. It records the time each pass 2 took.
func (ls *loadServer) burst(b *testing.B, logins []preparedLogin, lat []time.Duration) {
	for first := 0; first < len(logins); first += len(ls.clients) {
		wave := logins[first:min(first+len(ls.clients), len(logins))]
		pass2 := make([]*pairing.Pass2, len(wave))
		ls.eachClient(b, func(k int) error {
			if k >= len(wave) {
				return nil
			}
			ch, err := ls.sendPass1(wave[k])
			if err == nil {
				pass2[k], err = wave[k].session.Respond(ch, nil)
			}
			return err
		})
		ls.eachClient(b, func(k int) error {
			if k >= len(wave) {
				return nil
			}
			t0 := time.Now()
			err := ls.sendPass2(wave[k], pass2[k])
			lat[first+k] = time.Since(t0)
			return err
		})
	}
}

// eachClient runs f(k) for every client k at once and fails b (now) if any fails.
func (ls *loadServer) eachClient(b *testing.B, f func(k int) error) {
	var wg sync.WaitGroup
	for k := range ls.clients {
		wg.Go(func() {
			if err := f(k); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

// BenchmarkLoginLoad's logins go in rounds of loadRound; after each, with the timer
// stopped, refLogins logins of BenchmarkServerLogin/batch=64 run in process.
const (
	loadRound = 4 * loadClients
	refLogins = 2 * serverLoginChunk
)

// The child's metrics that BenchmarkLoginLoad reads (server/batch.go).
const (
	metricBatchSum   = "polyroot_server_login_batch_size_sum"
	metricBatchCount = "polyroot_server_login_batch_size_count"
	metricWaitSum    = "polyroot_server_login_batch_wait_seconds_sum"
	metricWaitCount  = "polyroot_server_login_batch_wait_seconds_count"
)

// A loadServer is a `polyroot server serve` child process with loadClients enrolled
// clients and the HTTP client they share.
type loadServer struct {
	child   *testbin.Child
	hc      *http.Client
	clients []*pairing.Client
}

// startLoadServer builds polyroot, starts a domain of three DTAs in this process,
// provisions the auth server's key with the CLI, starts `polyroot server serve` on
// loopback and enrols loadClients identities through its admin API.
func startLoadServer(b *testing.B) *loadServer {
	b.Helper()
	dir := b.TempDir()
	bin := polyrootBinary(b)
	d := testdomain.New(b, "load.example.com", 3, 0)
	bundleFile := d.WriteBundle(dir)
	regFile := filepath.Join(dir, "registrar.pem")
	der, err := x509.MarshalPKCS8PrivateKey(d.Registrar)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(regFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		b.Fatal(err)
	}
	keysDir := filepath.Join(dir, "keys")
	env := testbin.ChildEnv("POLYROOT_ADMIN_TOKEN=" + adminToken) // GOMAXPROCS passes through
	prov := exec.Command(bin, "server", "provision", "--bundle", bundleFile, "--registrar-key", regFile, "--keystore-dir", keysDir)
	prov.Env = env
	if out, err := prov.CombinedOutput(); err != nil {
		b.Fatalf("BenchmarkLoginLoad: polyroot server provision: %v\n%s", err, out)
	}
	child := testbin.StartChild(b, bin, env, filepath.Join(dir, "serve.log"), []string{"server", "serve",
		"--bundle", bundleFile, "--registrar-key", regFile, "--keystore-dir", keysDir, "--data-dir", benchDataDir(b),
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--rate-limit", "1000000000", "--rate-burst", "1000000000", "--log-format", "text", "--log-level", "warn"})
	if child.Metrics == "" {
		b.Fatal("BenchmarkLoginLoad: the server's ready line names no metrics URL")
	}
	ls := &loadServer{child: child, hc: &http.Client{Timeout: time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: loadClients, DisableCompression: true}}}
	b.Cleanup(ls.hc.CloseIdleConnections)
	m := newMinter(b, d)
	ls.clients = make([]*pairing.Client, loadClients)
	for i := range ls.clients {
		body, _ := json.Marshal(wire.EnrolmentRequest{ID: fmt.Sprintf("user%d@load.example.com", i)})
		status, answer, err := ls.post("/v1/admin/enrolments", adminToken, body)
		if err != nil {
			b.Fatal(err)
		}
		ls.clients[i] = m.enrolled(b, status, answer)
	}
	return ls
}

// polyrootBin is the polyroot command built by polyrootBinary, once per process.
var polyrootBin struct {
	once sync.Once
	path string
}

// polyrootBinary builds the polyroot command once per process (b.Fatal if it cannot
// be built: no go tool, a build error) and returns its path. It is built into
// $XDG_CACHE_HOME/polyroot/bench-<hash of the working directory> (~/.cache/… by
// default, the temporary directory without a home), outside the tree and kept from
// one run to the next: `go build -o` relinks the 75 MB binary (about 20 s with
// GOMAXPROCS=1 on a busy machine) unless the file there is up to date.
func polyrootBinary(b *testing.B) string {
	b.Helper()
	polyrootBin.once.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		wd, _ := os.Getwd()
		sum := sha256.Sum256([]byte(wd))
		dir := filepath.Join(cache, "polyroot", "bench-"+hex.EncodeToString(sum[:6]))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		polyrootBin.path = testbin.Polyroot(b, dir)
	})
	if polyrootBin.path == "" {
		b.Fatal("BenchmarkLoginLoad: polyroot could not be built (see the first failure)")
	}
	return polyrootBin.path
}

// post sends a JSON body (with a bearer token if any) to the child and returns the
// answer's status and body.
func (ls *loadServer) post(path, token string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, ls.child.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ls.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	return resp.StatusCode, answer, err
}

// A preparedLogin is a client's pass 1, made before the clock runs, and the session
// that goes on with it.
type preparedLogin struct {
	session *pairing.ClientSession
	body    []byte // the request of pass 1
}

// prepare makes n logins' pass 1 with PIN testPIN, login i by client i modulo
// loadClients.
func (ls *loadServer) prepare(b *testing.B, n int) []preparedLogin {
	logins := make([]preparedLogin, n)
	for i := range logins {
		cs, p1, err := ls.clients[i%len(ls.clients)].Start(nil, testPIN)
		if err != nil {
			b.Fatal(err)
		}
		enc, _ := p1.MarshalBinary()
		body, _ := json.Marshal(wire.StartRequest{Pass1: enc})
		logins[i] = preparedLogin{session: cs, body: body}
	}
	return logins
}

// sendPass1 sends l's pass 1 and returns the server's challenge.
func (ls *loadServer) sendPass1(l preparedLogin) (*pairing.Challenge, error) {
	status, answer, err := ls.post("/v1/login/start", "", l.body)
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("pass 1: %d %s %v", status, answer, err)
	}
	var sr wire.StartResponse
	var ch pairing.Challenge
	if err := json.Unmarshal(answer, &sr); err != nil {
		return nil, err
	}
	return &ch, ch.UnmarshalBinary(sr.Challenge)
}

// sendPass2 sends l's pass 2 and checks the server's proof and access token.
func (ls *loadServer) sendPass2(l preparedLogin, p2 *pairing.Pass2) error {
	enc, _ := p2.MarshalBinary()
	body, _ := json.Marshal(wire.FinishRequest{Pass2: enc})
	status, answer, err := ls.post("/v1/login/finish", "", body)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("pass 2: %d %s %v", status, answer, err)
	}
	var fr wire.FinishResponse
	var fin pairing.Finish
	if err := json.Unmarshal(answer, &fr); err != nil || fr.AccessToken == "" {
		return fmt.Errorf("no access token: %v", err)
	}
	if err := fin.UnmarshalBinary(fr.Finish); err != nil {
		return err
	}
	if _, err := l.session.Finish(&fin); err != nil {
		return fmt.Errorf("server proof: %w", err)
	}
	return nil
}

// metrics scrapes the child's metrics: the value of each unlabelled sample.
func (ls *loadServer) metrics(b *testing.B) map[string]float64 {
	b.Helper()
	resp, err := ls.hc.Get(ls.child.Metrics)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d %v", ls.child.Metrics, resp.StatusCode, err)
	}
	m := make(map[string]float64)
	for _, line := range strings.Split(string(text), "\n") {
		if name, v, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(name, "#") && !strings.Contains(name, "{") {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				m[name] = f
			}
		}
	}
	return m
}
