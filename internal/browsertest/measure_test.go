package browsertest

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"

	"github.com/polyroot/polyroot/client"
)

// loginRuns is how many logins each side of the measurement makes.
const loginRuns = 5

// processCPU is the CPU time (user + system) of this test process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rendererTaskTime is the page's main-thread task time (Performance.getMetrics
// TaskDuration): the CPU the page's JavaScript and WebAssembly used, with layout.
func rendererTaskTime(t *testing.T, b *browser) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	m, err := chromedp.Call(ctx, performance.GetMetrics, cdp.Empty{})
	if err != nil {
		t.Fatalf("Performance.getMetrics: %v", err)
	}
	for _, x := range m.Metrics {
		if x.Name == "TaskDuration" {
			return time.Duration(x.Value * float64(time.Second))
		}
	}
	t.Fatal("Performance.getMetrics has no TaskDuration")
	return 0
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// measureLogin compares a login in the browser (the WebAssembly client, called
// through globalThis.polyroot on the enrolled page b) with the same login by the
// native Go client against the same auth server, loginRuns times each, and logs
// the medians: wall time, the renderer's CPU for the browser, and this process's
// CPU (the auth server's share, and for the native login the client's as well).
func measureLogin(t *testing.T, b *browser, st *Stack, pin string) {
	t.Helper()
	// The page's client: loginRuns logins, each timed by performance.now() in the page
	// and by the renderer's task time.
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	if _, err := chromedp.Call(ctx, performance.Enable, performance.EnableParams{TimeDomain: performance.EnableTimeDomainThreadTicks}); err != nil {
		t.Fatalf("Performance.enable: %v", err)
	}
	cancel()
	var bWall, bTask, bServer []time.Duration
	for range loginRuns {
		task0, cpu0 := rendererTaskTime(t, b), processCPU()
		ms := eval[float64](b, loginTimeout, `(async () => {
  const t0 = performance.now();
  const r = await globalThis.polyroot.login(location.origin, `+jsString(pin)+`);
  if (!r.accessToken) throw new Error('no access token');
  return performance.now() - t0;
})()`)
		cpu1, task1 := processCPU(), rendererTaskTime(t, b)
		bWall = append(bWall, time.Duration(ms*float64(time.Millisecond)))
		bTask = append(bTask, task1-task0)
		bServer = append(bServer, cpu1-cpu0)
	}

	// The native client, enrolled as another identity of the same domain, logging in
	// to the same server over the same loopback HTTP without channel binding.
	dir := t.TempDir()
	bundleFile := filepath.Join(t.TempDir(), "bundle.json")
	if err := os.WriteFile(bundleFile, st.Domain.BundleFile, 0o644); err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	if err := client.Bootstrap(bg, dir, bundleFile, st.Domain.Fingerprint); err != nil {
		t.Fatal(err)
	}
	c, err := client.Open(dir, client.WithInsecureHTTP(), client.WithoutChannelBinding())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Enroll(bg, st.URL, st.Enrolment(t, "native@browser.example.test"), []byte(pin), false); err != nil {
		t.Fatal(err)
	}
	var nWall, nCPU []time.Duration
	for range loginRuns {
		cpu0, w0 := processCPU(), time.Now()
		if _, err := c.Login(bg, st.URL, []byte(pin)); err != nil {
			t.Fatal(err)
		}
		nWall = append(nWall, time.Since(w0))
		nCPU = append(nCPU, processCPU()-cpu0)
	}

	server := median(bServer)
	native := median(nCPU) - server
	ratio := func(a, b time.Duration) float64 { return float64(a) / float64(max(b, time.Microsecond)) }
	t.Logf("login, median of %d (browser: headless Chromium, WebAssembly client; native: Go client, same server, loopback HTTP, unbound):", loginRuns)
	t.Logf("  browser wall %v (performance.now around polyroot.login), renderer CPU %v (TaskDuration), auth server CPU meanwhile %v",
		median(bWall).Round(time.Millisecond), median(bTask).Round(time.Millisecond), server.Round(time.Millisecond))
	t.Logf("  native  wall %v, process CPU %v (client + server), so client CPU ≈ %v",
		median(nWall).Round(time.Millisecond), median(nCPU).Round(time.Millisecond), native.Round(time.Millisecond))
	t.Logf("  browser/native: wall %.1fx, client CPU %.1fx", ratio(median(bWall), median(nWall)), ratio(median(bTask), native))
	t.Logf("  all runs: browser wall %v task %v server %v; native wall %v cpu %v", bWall, bTask, bServer, nWall, nCPU)

	wasm, err := os.ReadFile(filepath.Join(wasmBuild.dir, "polyroot.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(wasm)
	zw.Close()
	t.Logf("polyroot.wasm: %.2f MB, %.2f MB gzipped (budget 1.5 MB); built in %v",
		float64(len(wasm))/1e6, float64(gz.Len())/1e6, wasmBuild.elapsed.Round(time.Second))
}
