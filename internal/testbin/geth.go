package testbin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// A Geth is a real `geth --dev` node (chain ID 1337, a funded and unlocked dev account,
// one block a second, in memory) started for one test and killed when the test ends.
type Geth struct {
	URL string // http://127.0.0.1:PORT, the JSON-RPC endpoint
}

// StartGeth starts `geth --dev --dev.period 1` with JSON-RPC over HTTP on a free loopback
// port. The binary comes from POLYROOT_GETH_BIN or PATH (see Path); the process is
// managed as startServer describes.
func StartGeth(t testing.TB) *Geth {
	t.Helper()
	bin := Path(t, "POLYROOT_GETH_BIN", "geth")
	g := &Geth{}
	startServer(t, "geth --dev", bin, func(dir string) ([]string, func() bool) {
		httpPort, authPort, p2pPort := freePort(t), freePort(t), freePort(t)
		g.URL = "http://127.0.0.1:" + strconv.Itoa(httpPort)
		args := []string{"--dev", "--dev.period", "1", "--datadir", filepath.Join(dir, "data"),
			"--http", "--http.addr", "127.0.0.1", "--http.port", strconv.Itoa(httpPort), "--http.api", "eth,net,web3",
			"--authrpc.addr", "127.0.0.1", "--authrpc.port", strconv.Itoa(authPort),
			"--port", strconv.Itoa(p2pPort), "--ipcdisable", "--nodiscover", "--maxpeers", "0", "--verbosity", "3"}
		return args, func() bool { return gethHealthy(g.URL) }
	})
	return g
}

// gethHealthy reports whether eth_chainId answers.
func gethHealthy(url string) bool {
	c := &http.Client{Timeout: 2 * time.Second}
	defer c.CloseIdleConnections()
	body := `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`
	resp, err := c.Post(url, "application/json", bytes.NewBufferString(body))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var out struct {
		Result string `json:"result"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&out) == nil && out.Result != ""
}
