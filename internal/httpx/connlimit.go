package httpx

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// perClientListener closes at once every connection from a client (an IPv4 address
// or an IPv6 /64, as the rate limiter counts them) that already holds max open ones,
// or from an IPv6 /48 whose /64s together hold maxNetwork, so that one source cannot
// hold the whole of the listener's connection bound (netutil.LimitListener, which
// makes everyone wait) with idle connections: not from one address, nor from the
// many /64s of one site. Closing, not waiting: a wait would hold up the accept loop
// for every other client. Loopback peers are not counted: a reverse proxy on the same
// host is every client at once.
type perClientListener struct {
	net.Listener
	max, maxNetwork int
	refused         prometheus.Counter // may be nil
	logger          *slog.Logger
	logged          *throttleLog // one line per client and minute

	mu   sync.Mutex
	open map[string]int // by client and by IPv6 /48
}

func limitPerClient(l net.Listener, max, maxNetwork int, refused prometheus.Counter, logger *slog.Logger) *perClientListener {
	return &perClientListener{Listener: l, max: max, maxNetwork: maxNetwork, refused: refused, logger: logger,
		logged: newThrottleLog(time.Now), open: map[string]int{}}
}

func (l *perClientListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client, network, local := connClient(c)
		if local {
			return c, nil
		}
		l.mu.Lock()
		full := l.open[client] >= l.max || network != "" && l.open[network] >= l.maxNetwork
		if !full {
			l.open[client]++
			if network != "" {
				l.open[network]++
			}
		}
		l.mu.Unlock()
		if full {
			c.Close()
			l.refusedOne(client)
			continue
		}
		return &clientConn{Conn: c, release: func() { l.release(client, network) }}, nil
	}
}

// refusedOne counts a connection of client closed at once, and logs it sampled.
func (l *perClientListener) refusedOne(client string) {
	if l.refused != nil {
		l.refused.Inc()
	}
	if unlogged, ok := l.logged.admit(client); ok {
		l.logger.Warn("connection closed: its client (or its IPv6 /48) holds its share of the connections already", "client", client,
			"max_client_connections", l.max, "refused_unlogged", unlogged)
	}
}

func (l *perClientListener) release(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if k == "" {
			continue
		}
		if l.open[k]--; l.open[k] <= 0 {
			delete(l.open, k)
		}
	}
}

// connClient is what a connection counts against: its peer's rateKeys client and
// IPv6 /48 ("" for IPv4), or local for a loopback peer, which counts against nothing.
func connClient(c net.Conn) (client, network string, local bool) {
	addr := c.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	if a, err := netip.ParseAddr(addr); err == nil && a.Unmap().IsLoopback() {
		return "", "", true
	}
	client, network = rateKeys(addr)
	return client, network, false
}

// A clientConn gives its slot back once, on the first Close.
type clientConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *clientConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
