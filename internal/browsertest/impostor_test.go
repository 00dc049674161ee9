package browsertest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
	"github.com/polyroot/polyroot/server"
)

// impostorToken is the access token the impostor hands out; the page must never
// accept it.
const impostorToken = "impostor-access-token-do-not-accept"

// An impostor is an attacker's auth server for a domain's name, holding another
// domain's sQ: it runs the login protocol as far as it can and, unable to make the
// key confirmation, answers pass 2 with a made-up tag and an access token.
type impostor struct {
	name    string
	period  uint64
	key     *pairing.ServerKey
	URL     string
	starts  atomic.Int32
	finishs atomic.Int32

	mu       sync.Mutex
	sessions map[[pairing.SessionIDSize]byte]*pairing.ServerSession
}

// startImpostor starts an impostor for domain name (permit period period) over
// loopback HTTP, with the sQ of a fresh domain of its own.
func startImpostor(t *testing.T, name string, period uint64) *impostor {
	t.Helper()
	other := testdomain.New(t, "evil.example.test", 2, period)
	sQ, err := server.Provision(context.Background(), other.Bundle, other.Registrar, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pairing.NewServerKey(sQ)
	if err != nil {
		t.Fatal(err)
	}
	im := &impostor{name: name, period: period, key: key, sessions: map[[pairing.SessionIDSize]byte]*pairing.ServerSession{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/login/start", im.start)
	mux.HandleFunc("POST /v1/login/finish", im.finish)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	im.URL = hs.URL
	return im
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (im *impostor) start(w http.ResponseWriter, r *http.Request) {
	im.starts.Add(1)
	var req wire.StartRequest
	var p1 pairing.Pass1
	if json.NewDecoder(r.Body).Decode(&req) != nil || p1.UnmarshalBinary(req.Pass1) != nil {
		answer(w, http.StatusBadRequest, apiError{"bad_request", "bad pass 1"})
		return
	}
	v := &pairing.Verifier{Domain: pairing.Domain{Name: im.name, PermitPeriod: im.period}, Key: im.key}
	if req.Purpose == wire.PurposeRenew {
		v.Domain.PermitPeriod = 0
	}
	sess, ch, err := v.Challenge(nil, &p1, time.Now())
	if err != nil {
		answer(w, http.StatusBadRequest, apiError{"bad_request", err.Error()})
		return
	}
	im.mu.Lock()
	im.sessions[sess.ID()] = sess
	im.mu.Unlock()
	b, _ := ch.MarshalBinary()
	answer(w, http.StatusOK, wire.StartResponse{Challenge: b})
}

func (im *impostor) finish(w http.ResponseWriter, r *http.Request) {
	im.finishs.Add(1)
	var req wire.FinishRequest
	var p2 pairing.Pass2
	if json.NewDecoder(r.Body).Decode(&req) != nil || p2.UnmarshalBinary(req.Pass2) != nil {
		answer(w, http.StatusBadRequest, apiError{"bad_request", "bad pass 2"})
		return
	}
	im.mu.Lock()
	sess := im.sessions[p2.SessionID]
	delete(im.sessions, p2.SessionID)
	im.mu.Unlock()
	if sess == nil {
		answer(w, http.StatusNotFound, apiError{"unknown_session", "expired or used"})
		return
	}
	if _, _, err := sess.Finish(&p2, nil); err == nil {
		panic("impostor: another domain's sQ verified a login")
	}
	var tag pairing.Finish
	rand.Read(tag.Tag[:])
	b, _ := tag.MarshalBinary()
	answer(w, http.StatusOK, wire.FinishResponse{Finish: b, ID: "whoever", AccessToken: impostorToken,
		ExpiresAt: time.Now().Add(time.Hour)})
}
