package translog

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/klog/v2"
)

// RouteTesseraLogs sends the log lines of Tessera (which logs through klog) to logger,
// so a service has one structured log. klog's logger is process-wide and must not be
// replaced while Tessera uses it, so klog is routed once, to a handler that forwards to
// the logger of the latest call: it is safe to call at any time, and several logs in
// one process (as in tests) neither race nor lose lines.
func RouteTesseraLogs(logger *slog.Logger) {
	tesseraTarget.Store(logger)
	routeOnce.Do(func() { klog.SetSlogLogger(slog.New(forward{})) })
}

var (
	routeOnce     sync.Once
	tesseraTarget atomic.Pointer[slog.Logger]
)

// forward is a slog.Handler that sends records to tesseraTarget, applying the
// attributes and groups it was derived with.
type forward struct {
	derive []func(slog.Handler) slog.Handler
}

func (f forward) target() slog.Handler {
	h := tesseraTarget.Load().Handler()
	for _, d := range f.derive {
		h = d(h)
	}
	return h
}

func (f forward) Enabled(ctx context.Context, l slog.Level) bool { return f.target().Enabled(ctx, l) }

func (f forward) Handle(ctx context.Context, r slog.Record) error {
	h := f.target()
	if quiet(r) {
		// Enabled passed it at INFO; the target must not see it unless it logs DEBUG.
		if !h.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.Handle(ctx, r)
}

// quiet reports whether r is one of Tessera's INFO lines of a log's first start,
// which call for nothing: "Initializing directory for POSIX log … (this should only
// happen ONCE per log!)" and "Failed to fetch old checkpoint: file does not exist"
// (there is none yet; its wording reads like a fault). They are logged at DEBUG.
func quiet(r slog.Record) bool {
	if r.Level != slog.LevelInfo {
		return false
	}
	m := r.Message
	return strings.HasPrefix(m, "Initializing directory for POSIX log at ") ||
		strings.HasPrefix(m, "Failed to fetch old checkpoint: ") && (strings.Contains(m, "does not exist") || strings.Contains(m, "no such file"))
}

func (f forward) WithAttrs(attrs []slog.Attr) slog.Handler {
	return f.with(func(h slog.Handler) slog.Handler { return h.WithAttrs(attrs) })
}

func (f forward) WithGroup(name string) slog.Handler {
	return f.with(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

func (f forward) with(d func(slog.Handler) slog.Handler) forward {
	return forward{derive: append(append([]func(slog.Handler) slog.Handler{}, f.derive...), d)}
}
