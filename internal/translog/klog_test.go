package translog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestTesseraFirstStartQuiet: Tessera's INFO lines of a first start reach the
// service's log at DEBUG only; its other lines pass unchanged.
func TestTesseraFirstStartQuiet(t *testing.T) {
	defer tesseraTarget.Store(tesseraTarget.Load())
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var buf bytes.Buffer
		tesseraTarget.Store(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level})))
		klog := slog.New(forward{}).With("dta", 1)
		klog.Info(`Initializing directory for POSIX log at "data/log" (this should only happen ONCE per log!)`)
		klog.Info("Failed to fetch old checkpoint: file does not exist")
		klog.Info("Failed to fetch old checkpoint: permission denied")
		klog.Warn("something else")
		out := buf.String()
		quietLines := strings.Count(out, "level=DEBUG")
		if level == slog.LevelInfo && (strings.Contains(out, "Initializing") || strings.Contains(out, "does not exist")) {
			t.Errorf("first-start lines at INFO:\n%s", out)
		}
		if level == slog.LevelDebug && quietLines != 2 {
			t.Errorf("want the first-start lines at DEBUG:\n%s", out)
		}
		if !strings.Contains(out, `level=INFO msg="Failed to fetch old checkpoint: permission denied" dta=1`) || !strings.Contains(out, "level=WARN") {
			t.Errorf("other lines changed:\n%s", out)
		}
	}
}
