package server

import (
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// Page sizes of GET /v1/admin/enrolments.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// info is the registrar's view of enrolment e of id at now.
func (s *Server) info(id pairing.IDHash, e *enrolment, fails failRecord, now time.Time) wire.EnrolmentInfo {
	count, day, blocked := s.fails.status(fails, now)
	state := wire.StateActive
	switch {
	case e.Revoked != nil:
		state = wire.StateRevoked
	case e.NotAfter != nil && !now.Before(*e.NotAfter):
		state = wire.StateExpired
	case blocked:
		state = wire.StateBlocked
	case e.ClientKey == nil:
		state = wire.StatePending
	}
	return wire.EnrolmentInfo{ID: e.ID, IDHash: hex.EncodeToString(id[:]), State: state, Device: e.Device, Created: e.Created,
		NotAfter: e.NotAfter, Revoked: e.Revoked, PermitDays: e.PermitDays, Failures: count, DayFailures: day}
}

// otherActive counts the enrolments of appID that are pending, active or blocked.
func (s *Server) otherActive(appID string, now time.Time) (int, error) {
	ids, err := s.store.enrolmentsOf(appID)
	if errors.Is(err, errNotFound) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		e, err := s.store.enrolment(id)
		if err != nil {
			return 0, err
		}
		if e.usable(now) {
			n++
		}
	}
	return n, nil
}

func (s *Server) handleListEnrolments(w http.ResponseWriter, r *http.Request) {
	res, err := s.listEnrolments(r)
	s.adminResult("list", err)
	if err != nil {
		httpx.WriteError(w, r, s.cfg.Logger, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, res)
}

// listEnrolments answers a page of enrolments: of one ID (id=, every enrolment at
// once) or of the whole domain (after= the last idhash of the previous page, limit=).
func (s *Server) listEnrolments(r *http.Request) (*wire.EnrolmentList, error) {
	q := r.URL.Query()
	for k, v := range q {
		if (k != "id" && k != "after" && k != "limit") || len(v) != 1 {
			return nil, httpx.Errorf(http.StatusBadRequest, "bad_request", "the query takes id, after and limit, each at most once")
		}
	}
	now := s.cfg.Now()
	res := &wire.EnrolmentList{Enrolments: []wire.EnrolmentInfo{}}
	if q.Has("id") {
		if q.Has("after") || q.Has("limit") {
			return nil, httpx.Errorf(http.StatusBadRequest, "bad_request", "id lists every enrolment of one ID: it takes no after or limit")
		}
		ids, err := s.store.enrolmentsOf(q.Get("id"))
		if errors.Is(err, errNotFound) {
			return nil, errUnknownIdentity
		} else if err != nil {
			return nil, err
		}
		for _, id := range ids {
			e, err := s.store.enrolment(id)
			if err != nil {
				return nil, err
			}
			fails, err := s.store.failures(id[:])
			if err != nil {
				return nil, err
			}
			res.Enrolments = append(res.Enrolments, s.info(id, e, fails, now))
		}
		return res, nil
	}
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return nil, httpx.Errorf(http.StatusBadRequest, "bad_request", "limit must be 1 to %d", maxListLimit)
		}
		limit = n
	}
	var after []byte
	if v := q.Get("after"); v != "" {
		b, err := hex.DecodeString(v)
		if err != nil || len(b) != len(pairing.IDHash{}) {
			return nil, httpx.Errorf(http.StatusBadRequest, "bad_request", "after must be an idhash (64 hex digits)")
		}
		after = b
	}
	page, err := s.store.listEnrolments(after, limit+1)
	if err != nil {
		return nil, err
	}
	for _, l := range page {
		if len(res.Enrolments) == limit {
			res.Next = res.Enrolments[limit-1].IDHash
			break
		}
		res.Enrolments = append(res.Enrolments, s.info(l.id, l.e, l.fails, now))
	}
	return res, nil
}
