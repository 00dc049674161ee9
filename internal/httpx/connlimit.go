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
// so that one client cannot hold the whole of the listener's connection bound
// (netutil.LimitListener, which makes everyone wait) with idle connections. Closing,
// not waiting: a wait would hold up the accept loop for every other client. Loopback
// peers are not counted: a reverse proxy on the same host is every client at once.
type perClientListener struct {
	net.Listener
	max     int
	refused prometheus.Counter // may be nil
	logger  *slog.Logger
	logged  *throttleLog // one line per client and minute

	mu   sync.Mutex
	open map[string]int
}

func limitPerClient(l net.Listener, max int, refused prometheus.Counter, logger *slog.Logger) *perClientListener {
	return &perClientListener{Listener: l, max: max, refused: refused, logger: logger, logged: newThrottleLog(time.Now), open: map[string]int{}}
}

func (l *perClientListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := connClient(c)
		if key == "" {
			return c, nil
		}
		l.mu.Lock()
		full := l.open[key] >= l.max
		if !full {
			l.open[key]++
		}
		l.mu.Unlock()
		if full {
			c.Close()
			l.refusedOne(key)
			continue
		}
		return &clientConn{Conn: c, release: func() { l.release(key) }}, nil
	}
}

// refusedOne counts a connection of key closed at once, and logs it sampled.
func (l *perClientListener) refusedOne(key string) {
	if l.refused != nil {
		l.refused.Inc()
	}
	if unlogged, ok := l.logged.admit(key); ok {
		l.logger.Warn("connection closed: its client holds its share of the connections already", "client", key,
			"max_client_connections", l.max, "refused_unlogged", unlogged)
	}
}

func (l *perClientListener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// connClient is the key a connection counts against, its peer's rateKeys client, or
// "" for a loopback peer.
func connClient(c net.Conn) string {
	addr := c.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	if a, err := netip.ParseAddr(addr); err == nil && a.Unmap().IsLoopback() {
		return ""
	}
	client, _ := rateKeys(addr)
	return client
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
