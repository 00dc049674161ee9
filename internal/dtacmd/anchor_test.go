package dtacmd

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/internal/bundle"
)

// TestNewAnchorBundleAnchoring: a DTA whose trust bundle names its anchoring anchors on
// that chain at that contract, or does not start.
func TestNewAnchorBundleAnchoring(t *testing.T) {
	const contract = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
	want := &bundle.Anchoring{ChainID: 11155111, Contract: contract}
	keyFile := filepath.Join(t.TempDir(), "chain.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("1", 64)), 0o600); err != nil {
		t.Fatal(err)
	}
	rpc := Anchoring{RPCURL: "http://127.0.0.1:1", KeyFile: keyFile, Contract: "0x" + strings.ToUpper(contract[2:])} // another case, no chain there
	// A JSON-RPC endpoint of chain 5.
	chain5 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID json.RawMessage `json:"id"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":"0x5"}`, req.ID)
	}))
	defer chain5.Close()
	other := rpc
	other.RPCURL = chain5.URL
	for _, tc := range []struct {
		name  string
		chain string
		cfg   Anchoring
		want  *bundle.Anchoring
		err   string // "" for none
	}{
		{"ok/none-named", ChainNone, Anchoring{}, nil, ""},
		{"ok/rpc-named-contract", ChainRPC, rpc, want, ""},
		{"fail/other-chain", ChainRPC, other, want, "the RPC endpoint serves chain 5, the trust bundle anchors on chain 11155111: check --rpc-url"},
		{"fail/no-chain", ChainNone, Anchoring{}, want, "give --chain rpc"},
		{"fail/embedded", ChainEmbedded, Anchoring{}, want, "not --chain embedded"},
		{"fail/other-contract", ChainRPC, Anchoring{RPCURL: rpc.RPCURL, KeyFile: keyFile, Contract: "0x" + strings.Repeat("ab", 20)}, want,
			"anchored on chain 11155111 at contract " + contract},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hook, closeChain, err := newAnchor(context.Background(), tc.chain, tc.cfg, tc.want, "polyroot/x/dta-1", t.TempDir(), slog.New(slog.DiscardHandler))
			defer closeChain()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && (hook == nil || hook.a.ChainID != tc.want.ChainID) {
				t.Fatalf("the anchorer is not held to chain %d", tc.want.ChainID)
			}
		})
	}
}
