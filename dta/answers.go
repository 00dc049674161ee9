package dta

import (
	"container/list"
	"sync"

	"github.com/polyroot/polyroot/internal/wire"
)

// Answers of completed tickets, kept in memory for their retries.
//
// A retry of a ticket gets what the first request got: the record's entries and sealed
// shares, each with the DTA's promise. Built from the record, that is one Ed25519
// signature per entry and the decoding of the whole record: for a 366-slot permit
// ticket some 17 ms of CPU, for a request of 1 KB that anyone holding the ticket can
// repeat up to the rate limit. The signatures are deterministic, and nothing in an
// answer depends on what Reload may change (the signing key, the log origin and the
// DTA's index are those of the log, fixed), so the answer built once is the answer
// for good: it is kept here, up to maxAnswerBytes in all, the least recently used
// going first, and a retry found here costs the nonce and revocation checks only.
// A record's answer is kept from its first response on, whether the ticket is retried
// or not: knowing which tickets will be would take a first retry that signs again.

// maxAnswerBytes bounds the memory the kept answers take (about a hundred answers of
// a year of permits, tens of thousands of client shares).
const maxAnswerBytes = 32 << 20

// answerCache holds the answers of completed tickets by ticket nonce. Its zero value
// is not usable: see newAnswerCache.
type answerCache struct {
	mu    sync.Mutex
	max   int // in bytes, as answerSize counts them
	size  int
	order *list.List // of *answer, the most recently used first
	byKey map[string]*list.Element
}

// An answer is the response to one ticket: once built, never changed, as every retry
// of the ticket is given the same value.
type answer struct {
	nonce        string
	ticketSHA256 string // hex, as in the record: another ticket with the nonce is refused
	resp         *wire.DTAResponse
	size         int
}

func newAnswerCache(maxBytes int) *answerCache {
	return &answerCache{max: maxBytes, order: list.New(), byKey: map[string]*list.Element{}}
}

// get returns the answer kept for nonce, nil if there is none.
func (c *answerCache) get(nonce string) *answer {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byKey[nonce]
	if e == nil {
		return nil
	}
	c.order.MoveToFront(e)
	return e.Value.(*answer)
}

// add keeps resp as the answer to the ticket of nonce (hex SHA-256 ticketSHA256),
// forgetting the least recently used answers past the bound. An answer larger than
// the bound by itself is not kept.
func (c *answerCache) add(nonce, ticketSHA256 string, resp *wire.DTAResponse) {
	a := &answer{nonce: nonce, ticketSHA256: ticketSHA256, resp: resp, size: answerSize(nonce, resp)}
	if a.size > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.byKey[nonce]; e != nil {
		c.size -= e.Value.(*answer).size
		c.order.Remove(e)
	}
	c.byKey[nonce] = c.order.PushFront(a)
	c.size += a.size
	for c.size > c.max {
		old := c.order.Remove(c.order.Back()).(*answer)
		delete(c.byKey, old.nonce)
		c.size -= old.size
	}
}

// answerSize is about the memory an answer holds: its byte slices, and a fixed
// allowance per share and per answer for the structs, slice headers and map entry.
func answerSize(nonce string, resp *wire.DTAResponse) int {
	n := 256 + 2*len(nonce)
	for _, sh := range resp.Shares {
		n += 160 + len(sh.Sealed) + len(sh.Entry)
		if p := sh.Promise; p != nil {
			n += len(p.LeafHash) + len(p.Signature)
		}
	}
	return n
}
