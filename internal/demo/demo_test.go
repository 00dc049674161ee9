package demo

import (
	"bytes"
	"context"
	"testing"
)

// The whole story runs in internal/cli's TestDemo, as `polyroot demo`.

func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Run(ctx, new(bytes.Buffer)); err == nil {
		t.Fatal("a cancelled demo reported success")
	}
}
