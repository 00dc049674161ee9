package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/polyroot/polyroot/internal/testbin"
)

// A browser is one headless Chromium with a fresh profile (so fresh IndexedDB) and one
// tab; what its pages write to the console is kept for failure messages.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []string
}

// newBrowser starts Chromium for the test: headless, no sandbox when running as root,
// a temporary user-data-dir. It is stopped when the test ends.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := testbin.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(480, 860),
		chromedp.Flag("disable-gpu", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{t: t}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	b.ctx = ctx
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("browser console:\n%s", b.consoleText())
		}
	})
	// The first Run starts the browser; it takes no timeout (that would stop it).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium (%s): %v", exe, err)
	}
	return b
}

func (b *browser) listen(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			if len(a.Value) > 0 {
				var s string
				if json.Unmarshal(a.Value, &s) == nil {
					parts = append(parts, s)
					continue
				}
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		line = "exception: " + d.Text
		if d.Exception != nil {
			line += " " + d.Exception.Description
		}
	default:
		return
	}
	b.mu.Lock()
	b.console = append(b.console, line)
	b.mu.Unlock()
}

func (b *browser) consoleText() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.console, "\n")
}

// do runs the actions with a timeout.
func (b *browser) do(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v\nconsole:\n%s", err, b.consoleText())
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) into T.
func eval[T any](b *browser, timeout time.Duration, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("browser: evaluating %s: %v\nconsole:\n%s", expr, err, b.consoleText())
	}
	return v
}

// screenJS is the id of the page's visible screen, its heading and message.
const screenJS = `(() => {
  const s = document.querySelector('main > section:not([hidden])');
  if (!s) return {id: '', text: ''};
  return {id: s.id, error: s.classList.contains('error'), text: s.innerText,
    message: (document.getElementById('error-message') || {}).textContent || ''};
})()`

type screen struct {
	ID      string `json:"id"`
	Error   bool   `json:"error"`
	Text    string `json:"text"`
	Message string `json:"message"`
}

// final are the screens a page stays on, besides the error screens.
var final = map[string]bool{"screen-unavailable": true, "screen-logged-in": true, "screen-enrolled": true}

// waitScreen waits until the page shows screen id, and fails the test early when it
// shows another error screen or final screen instead.
func (b *browser) waitScreen(id string, timeout time.Duration) screen {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var s screen
	for {
		s = eval[screen](b, 10*time.Second, screenJS)
		if s.ID == id {
			return s
		}
		if s.Error || final[s.ID] {
			b.t.Fatalf("the page shows %s, want %s: %q %s\nconsole:\n%s", s.ID, id, s.Text, s.Message, b.consoleText())
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("after %v the page shows %q, want %s: %q\nconsole:\n%s", timeout, s.ID, id, s.Text, b.consoleText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// navigate opens url.
func (b *browser) navigate(url string) {
	b.t.Helper()
	b.do(60*time.Second, chromedp.Navigate(url))
}

// clickPIN enters pin on the PIN pad with the pointer, then presses its OK button.
func (b *browser) clickPIN(pin string) {
	b.t.Helper()
	var steps []chromedp.Action[chromedp.Void]
	for _, d := range pin {
		steps = append(steps, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#pinpad button[data-digit="%c"]`, d))))
	}
	steps = append(steps, chromedp.WaitEnabled(chromedp.ID("pad-submit")), chromedp.Click(chromedp.ID("pad-submit")))
	b.do(30*time.Second, steps...)
}

// typePIN enters pin on the PIN pad from the keyboard and presses Enter.
func (b *browser) typePIN(pin string) {
	b.t.Helper()
	b.do(30*time.Second, chromedp.KeyEvent(pin), chromedp.KeyEvent("\r"))
}

// screenshot saves a PNG of the page as a test artifact and returns its path.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(artifactDir(b.t), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", p)
	return p
}

// artifactDir is where the tests save screenshots: $POLYROOT_ARTIFACTS (created if
// needed), else the test's temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("POLYROOT_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
