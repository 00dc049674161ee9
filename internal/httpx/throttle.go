package httpx

import (
	"sync"
	"time"
)

// ThrottleLogInterval is the least time between two log lines about the throttled
// requests of one client address.
const ThrottleLogInterval = time.Minute

// maxThrottleAddrs bounds the addresses a throttleLog remembers; beyond it, the
// addresses it has no room for share one sample, logged under the first of them.
const maxThrottleAddrs = 4096

// A throttleLog samples the log lines of throttled requests per client address.
type throttleLog struct {
	now   func() time.Time
	mu    sync.Mutex
	addrs map[string]*throttleSample
	// pruned is when the table was last cleared of old addresses.
	pruned time.Time
	other  throttleSample // for the addresses beyond maxThrottleAddrs
}

type throttleSample struct {
	logged   time.Time // of the last line
	unlogged int       // throttled requests since, not logged
}

func newThrottleLog(now func() time.Time) *throttleLog {
	return &throttleLog{now: now, addrs: map[string]*throttleSample{}}
}

// admit reports whether a throttled request from addr gets a log line, and if so how
// many throttled requests of addr (or of the overflow) were not logged since its last one.
func (t *throttleLog) admit(addr string) (unlogged int, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	s, known := t.addrs[addr]
	if !known {
		// When the table is full, forget the addresses whose line is old enough, at most
		// every few seconds (a flood of new addresses must not cost a scan each).
		if len(t.addrs) >= maxThrottleAddrs && now.Sub(t.pruned) >= ThrottleLogInterval/8 {
			t.pruned = now
			for a, old := range t.addrs {
				if now.Sub(old.logged) >= ThrottleLogInterval {
					delete(t.addrs, a)
				}
			}
		}
		if len(t.addrs) >= maxThrottleAddrs {
			s = &t.other
		} else {
			s = &throttleSample{}
			t.addrs[addr] = s
		}
	}
	if !s.logged.IsZero() && now.Sub(s.logged) < ThrottleLogInterval {
		s.unlogged++
		return 0, false
	}
	unlogged = s.unlogged
	s.logged, s.unlogged = now, 0
	return unlogged, true
}
