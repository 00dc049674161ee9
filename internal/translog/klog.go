package translog

import (
	"log/slog"

	"k8s.io/klog/v2"
)

// RouteTesseraLogs sends the log lines of Tessera (which uses klog) to logger, so a
// service has one structured log.
func RouteTesseraLogs(logger *slog.Logger) { klog.SetSlogLogger(logger) }
