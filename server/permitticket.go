package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/polyroot/polyroot/pairing"
)

// permitWindow is how long the same permit request gets the same ticket. A DTA
// answers a ticket it has seen from its records, so the requests of one identity
// within a window (a client that asks again, or an attacker with one enrolled device
// asking as fast as the rate limit allows) cost every DTA one issuance and its log a
// handful of entries, not one issuance and its entries each: the log is never pruned.
const permitWindow = 10 * time.Minute

// permitTicketFor returns when a permit ticket handed out now expires, and its nonce:
// both depend only on the window now falls in (permitWindow, at most a quarter of
// TicketTTL so that a ticket keeps three quarters of its life), the trust bundle in
// use (after a resharing, the DTAs issue under the successor), the identity, its
// enrolment key and the slots, so that one request within a window gets one ticket,
// from any replica (the nonce is keyed by the registrar key they share: derivedKey).
func (s *Server) permitTicketFor(id pairing.IDHash, clientKey []byte, first, last uint64, now time.Time) (time.Time, string) {
	start := now.Truncate(min(permitWindow, s.cfg.TicketTTL/4))
	notAfter := s.ticketExpiry(nil, start)
	mac := hmac.New(sha256.New, s.permitKey)
	mac.Write([]byte(s.trustBundle().fingerprint))
	mac.Write(id[:])
	mac.Write(clientKey)
	mac.Write(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, first), last))
	mac.Write(binary.BigEndian.AppendUint64(nil, uint64(notAfter.Unix())))
	return notAfter, hex.EncodeToString(mac.Sum(nil)[:16])
}
