package devnet

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBusyPort: a busy port is named, with the service and what to do (--base-port),
// before any key is made or unlocked: on a first start, on a restart (ports kept in
// devnet.json), and a restart asked for other ports is refused.
func TestBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port

	dir := filepath.Join(t.TempDir(), "devnet")
	_, err = Start(context.Background(), Options{Dir: dir, BasePort: port, ScryptLogN: 10})
	want := fmt.Sprintf("devnet: port %d (the auth server's) is not free (bind: address already in use): "+
		"give the devnet ports that are, with another --base-port (it uses %d to %d)", port, port, port+9)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("first start on a busy port: %v\nwant %s", err, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "passphrase")); !os.IsNotExist(err) {
		t.Fatalf("the refused start made the keystores' passphrase: %v", err)
	}

	// A devnet.json whose DTA 1 is on the busy port.
	free := &portPicker{taken: map[string]bool{}}
	info := Info{Domain: "devnet.localhost", Chain: "embedded", ServerURL: "https://" + mustPick(t, free)}
	for range DefaultDTAs {
		info.DTAURLs = append(info.DTAURLs, "http://"+mustPick(t, free))
	}
	info.DTAURLs[0] = "http://" + busy.Addr().String()
	free.close()
	raw, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(dir, "devnet.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Start(context.Background(), Options{Dir: dir, ScryptLogN: 10})
	want = fmt.Sprintf("devnet: port %d (DTA 1's, kept in devnet.json since the devnet's first start) is not free "+
		"(bind: address already in use): is this devnet already running?", port)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "another --dir (with another --base-port)") {
		t.Fatalf("restart on a busy port: %v\nwant %s", err, want)
	}

	_, err = Start(context.Background(), Options{Dir: dir, BasePort: port + 1, ScryptLogN: 10})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("--base-port %d: the devnet in %s has its ports from %d", port+1, dir, portOf(info.ServerURL))) {
		t.Fatalf("restart with another --base-port: %v", err)
	}
}

func mustPick(t *testing.T, p *portPicker) string {
	t.Helper()
	a, err := p.pick(0)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestNewDomainName: every new devnet has a domain name of its own, so that a client
// of one that is pointed at another's server is told so (wrong_domain) rather than
// refused as if its PIN were wrong.
func TestNewDomainName(t *testing.T) {
	a, b := newDomainName(), newDomainName()
	if a == b || !strings.HasPrefix(a, "devnet-") || !strings.HasSuffix(a, ".localhost") {
		t.Fatalf("domain names %q and %q", a, b)
	}
}
