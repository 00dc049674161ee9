package ledger

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDialBoundsAnswers: a JSON-RPC endpoint that answers without end is cut off at
// maxRPCResponse bytes instead of filling the memory.
func TestDialBoundsAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":"0x`))
		chunk := []byte(strings.Repeat("0", 1<<16))
		for sent := 0; sent < 2*maxRPCResponse; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c, err := Dial(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.BlockNumber(context.Background()); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("an endless answer: %v", err)
	}
}
