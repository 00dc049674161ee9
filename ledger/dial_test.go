package ledger

import (
	"context"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
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

// TestDialKeepsTheURLSecret: requests go to the URL's path and query (where providers
// put API keys) with its user information as basic auth, yet no error shows any of them.
func TestDialKeepsTheURLSecret(t *testing.T) {
	const key = "s3cr3t-api-key"
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":"0x2a"}`))
	}))
	defer srv.Close()
	withKey := strings.Replace(srv.URL, "http://", "http://user:pw-"+key+"@", 1) + "/v3/" + key + "?apikey=" + key
	c, err := Dial(context.Background(), withKey)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := c.BlockNumber(context.Background()); err != nil || n != 42 {
		t.Fatalf("block number %d, %v", n, err)
	}
	if user, pass, ok := got.BasicAuth(); got.URL.Path != "/v3/"+key || got.URL.Query().Get("apikey") != key || !ok || user != "user" || pass != "pw-"+key {
		t.Fatalf("the request went to %s (basic auth %q %q %v)", got.URL, user, pass, ok)
	}
	srv.Close() // now every call fails: its error must not show the key
	if _, err := c.BlockNumber(context.Background()); err == nil || strings.Contains(err.Error(), key) {
		t.Fatalf("error of a call to a closed endpoint: %v", err)
	}
	if _, err := Dial(context.Background(), "ftp://x/"+key); err != nil && strings.Contains(err.Error(), key) {
		t.Fatalf("Dial error shows the key: %v", err)
	}
	for raw, want := range map[string]string{
		"https://rpc.example.org":                "https://rpc.example.org",
		"https://rpc.example.org/":               "https://rpc.example.org",
		"https://mainnet.example.io/v3/" + key:   "https://mainnet.example.io/…",
		"http://127.0.0.1:8545?key=" + key:       "http://127.0.0.1:8545/…",
		"https://u:" + key + "@rpc.example.org/": "https://rpc.example.org/…",
		"::not a url":                            "(an RPC URL that does not parse)",
	} {
		if got := RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// chainIDService answers eth_chainId for a go-ethereum rpc.Server.
type chainIDService struct{}

func (chainIDService) ChainId() *hexutil.Big { return (*hexutil.Big)(big.NewInt(42)) }

// TestDialKeepsTheWebSocketURLSecret: over ws(s) go-ethereum dials the URL itself, so
// what keeps an API key in its path out of errors is that neither its dialer nor its
// calls name the URL; this holds them to it: a refused dial, a refused handshake and
// a call after the endpoint went away.
func TestDialKeepsTheWebSocketURLSecret(t *testing.T) {
	const key = "s3cr3t-api-key"
	rpcSrv := rpc.NewServer()
	if err := rpcSrv.RegisterName("eth", chainIDService{}); err != nil {
		t.Fatal(err)
	}
	defer rpcSrv.Stop()
	srv := httptest.NewServer(rpcSrv.WebsocketHandler([]string{"*"}))
	defer srv.Close()
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) }))
	defer refusing.Close()
	secret := func(base string) string {
		return strings.Replace(base, "http://", "ws://user:pw-"+key+"@", 1) + "/v3/" + key + "?apikey=" + key
	}
	for _, raw := range []string{secret(refusing.URL), "ws://127.0.0.1:1/v3/" + key} {
		if _, err := Dial(context.Background(), raw); err == nil || strings.Contains(err.Error(), key) {
			t.Fatalf("dialling %s: %v", RedactURL(raw), err)
		}
	}
	c, err := Dial(context.Background(), secret(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if id, err := c.ChainID(context.Background()); err != nil || id.Int64() != 42 {
		t.Fatalf("chain ID %v, %v", id, err)
	}
	srv.CloseClientConnections()
	rpcSrv.Stop()
	srv.Close()
	if _, err := c.ChainID(context.Background()); err == nil || strings.Contains(err.Error(), key) {
		t.Fatalf("a call after the endpoint went away: %v", err)
	}
}
