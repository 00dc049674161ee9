package browsertest

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"
	"golang.org/x/sys/unix"

	"github.com/polyroot/polyroot/client"
)

// loginRuns is how many measured logins each side makes, after one unmeasured.
const loginRuns = 7

// processCPU is the CPU time (user + system) of this test process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// threadCPU is the CPU time of the calling OS thread so far.
func threadCPU() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// rendererTaskTime is the page's main-thread task time (Performance.getMetrics
// TaskDuration, in thread ticks after Performance.enable): the CPU that the page's
// JavaScript and WebAssembly used on the renderer's main thread.
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
// native Go client against the same auth server over the same loopback HTTP, without
// channel binding, and logs the medians of loginRuns logins each:
//
//   - wall time: performance.now() around polyroot.login in the page; time.Now around
//     client.Login;
//   - client CPU: the renderer main thread's task time (the Go runtime, the
//     WebAssembly and the page's JavaScript all run there) against the CPU of the OS
//     thread that the native client.Login ran on, locked to it (its pairing work and
//     messages; the transport's goroutines, a small share, run elsewhere).
//
// Both include the same auth server, in this process, on the same two shared cores,
// so the wall ratio understates the client's own slowdown; the CPU ratio is the one
// that compares the two clients.
func measureLogin(t *testing.T, b *browser, st *Stack, pin string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	if _, err := chromedp.Call(ctx, performance.Enable, performance.EnableParams{TimeDomain: performance.EnableTimeDomainThreadTicks}); err != nil {
		t.Fatalf("Performance.enable: %v", err)
	}
	cancel()
	loginJS := `(async () => {
  const t0 = performance.now();
  const r = await globalThis.polyroot.login(location.origin, ` + jsString(pin) + `);
  if (!r.accessToken) throw new Error('no access token');
  return performance.now() - t0;
})()`
	var bWall, bCPU []time.Duration
	for i := range loginRuns + 1 {
		task0 := rendererTaskTime(t, b)
		ms := eval[float64](b, loginTimeout, loginJS)
		task1 := rendererTaskTime(t, b)
		if i > 0 {
			bWall = append(bWall, time.Duration(ms*float64(time.Millisecond)))
			bCPU = append(bCPU, task1-task0)
		}
	}

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
	var nWall, nCPU, nProc []time.Duration
	runtime.LockOSThread()
	for i := range loginRuns + 1 {
		p0, c0, w0 := processCPU(), threadCPU(), time.Now()
		_, err := c.Login(bg, st.URL, []byte(pin))
		w, c1, p1 := time.Since(w0), threadCPU(), processCPU()
		if err != nil {
			runtime.UnlockOSThread()
			t.Fatal(err)
		}
		if i > 0 {
			nWall, nCPU, nProc = append(nWall, w), append(nCPU, c1-c0), append(nProc, p1-p0)
		}
	}
	runtime.UnlockOSThread()

	ms := func(d time.Duration) string { return (d.Round(100 * time.Microsecond)).String() }
	ratio := func(a, b time.Duration) float64 { return float64(a) / float64(max(b, time.Microsecond)) }
	t.Logf("one login, median of %d after one warm-up, same auth server, loopback HTTP, unbound:", loginRuns)
	t.Logf("  browser (headless Chromium, WebAssembly): wall %s, client CPU %s (renderer main thread)", ms(median(bWall)), ms(median(bCPU)))
	t.Logf("  native Go client:                         wall %s, client CPU %s (its thread); whole process, server included, %s",
		ms(median(nWall)), ms(median(nCPU)), ms(median(nProc)))
	t.Logf("  browser / native: client CPU %.1fx, wall %.1fx", ratio(median(bCPU), median(nCPU)), ratio(median(bWall), median(nWall)))
	t.Logf("  runs: browser wall %v cpu %v; native wall %v cpu %v", bWall, bCPU, nWall, nCPU)

	wasm, err := os.ReadFile(filepath.Join(wasmBuild.dir, "polyroot.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(wasm)
	zw.Close()
	t.Logf("polyroot.wasm: %.2f MB, %.2f MB gzipped (issue 15's budget: 1.5 MB gzipped)", float64(len(wasm))/1e6, float64(gz.Len())/1e6)
}
