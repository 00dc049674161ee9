//go:build linux

package server

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/polyroot/polyroot/client"
	"github.com/polyroot/polyroot/internal/testbin"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// Sizes of TestReplicas.
const (
	rpGood       = 6  // identities that log in with the right PIN only
	rpLockout    = 8  // identities blocked by wrong PINs all at once before the burst
	rpWrong      = 8  // identities that get wrong PINs only in the burst
	rpMixed      = 8  // identities with right PINs and fewer wrong ones than rpMaxFails
	rpRevoked    = 8  // identities logging in while the registrar revokes them
	rpGoodTries  = 4  // logins per good identity
	rpWrongTries = 5  // wrong PINs per lockout and wrong identity (more than rpMaxFails)
	rpBlockedPIN = 2  // right PINs per lockout identity in the burst
	rpMixedRight = 3  // right PINs per mixed identity
	rpMixedWrong = 2  // wrong PINs per mixed identity (fewer than rpMaxFails)
	rpRevTries   = 3  // logins per revoked identity
	rpPending    = 3  // logins per replica whose pass 1 is answered before the kill, pass 2 after
	rpReplays    = 3  // copies of one pass 2 sent to each replica at once
	rpWorkers    = 64 // concurrent requests
	rpKillAt     = 30 // operations answered in the burst before replica B is killed (-9)
	rpMaxFails   = 3  // the servers' max_failures (the default)
	rpPIN        = "2468"
	rpWrongPIN   = "1357"
)

// Replicas of TestReplicas, as the round-robin transport numbers them.
const (
	replicaA = 0
	replicaB = 1
)

var replicaName = [2]string{"A", "B"}

// TestReplicas runs two real `polyroot server serve` processes on one PostgreSQL
// database (same server key, same token key, each on its own loopback port) behind a
// round-robin client that alternates the replicas request by request, so that pass 1
// and pass 2 of a login land on different replicas. TestPostgresReplicasInProcess
// checks the same store semantics with in-process servers one request at a time; this
// test checks them between processes, under concurrency and across a kill -9:
//
//   - pass 1 on A and pass 2 on B logs in (and B then A), through the client library;
//   - a session is single use across replicas: one pass 2 sent to both replicas at
//     once logs in exactly once, every other copy is unknown_session (404);
//   - a revocation answered by A is refused by B at once, including a login whose
//     pass 1 B answered before the revocation;
//   - the lockout is exact across replicas under concurrency: rpWrongTries wrong PINs
//     of each of rpLockout identities, all at once over both replicas, store exactly
//     rpWrongTries failures and block each; its answers are the tries left of failures
//     1 to rpWrongTries (2, 1, 0, 0, 0), each once;
//   - a burst of 64 concurrent logins with right and wrong PINs mixed in and
//     revocations, over both replicas: the failures stored are exactly the failures
//     answered, the tries left answered to an identity are distinct and consistent
//     with its stored count, an identity with rpMaxFails failures is blocked, right
//     PINs of identities that cannot be blocked always log in, those of blocked ones
//     never do, and a revocation answered is refused by every login started after it;
//   - replica B is killed (-9) in the middle of that burst; the client fails over to A
//     (a request that could not connect goes to the other replica; one in flight on B
//     gets no answer) and the burst goes on; B restarts at once on the same database
//     and port and takes its share of the rest. Nothing answered is lost: the counts,
//     blocks and revocations answered are stored and enforced by both replicas, and
//     logins whose pass 1 a replica answered before the kill finish on the other (the
//     dead B's on A, A's on the restarted B). The only state allowed to differ from
//     the answers is that of B's requests in flight at the kill: a pass 2 that got no
//     answer may or may not have been counted (the client library does not send such a
//     login again: its error says the answer was lost).
//
// There is no revocation of access tokens: they are stateless JWTs (server/middleware
// verifies them with the JWKS alone), valid until they expire; the test checks only
// that both replicas publish one token key.
//
// The test process runs under -race in `make test`; the two servers are built
// without it (testbin.Polyroot builds the plain binary).
func TestReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("the replicas test builds and runs the polyroot binary and PostgreSQL; skipped with -short")
	}
	start := time.Now()
	pg := testbin.StartPostgres(t) // skips, or fails under POLYROOT_INTEGRATION=1, without PostgreSQL
	dbURL := pg.CreateDatabase(t)
	dir := t.TempDir()
	bin := testbin.Polyroot(t, dir)
	t.Logf("PostgreSQL up and polyroot built in %v", time.Since(start).Round(time.Millisecond))

	// A domain of two DTAs in this process; the server key provisioned once into one
	// keystore, which both replicas read (the first to start creates the token key).
	d := testdomain.New(t, "replicas.example.test", 2, 0)
	bundleFile := d.WriteBundle(dir)
	regFile := filepath.Join(dir, "registrar.pem")
	der, err := x509.MarshalPKCS8PrivateKey(d.Registrar)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(regFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	keysDir := filepath.Join(dir, "keys")
	childEnv := testbin.ChildEnv("POLYROOT_ADMIN_TOKEN="+testAdmin, "POLYROOT_SERVER_DATABASE_URL="+dbURL)
	prov := exec.Command(bin, "server", "provision", "--bundle", bundleFile, "--registrar-key", regFile, "--keystore-dir", keysDir)
	prov.Env = childEnv
	if out, err := prov.CombinedOutput(); err != nil {
		t.Fatalf("server provision: %v\n%s", err, out)
	}
	serveArgs := func(name, listen string) []string {
		return []string{"server", "serve", "--bundle", bundleFile, "--registrar-key", regFile, "--keystore-dir", keysDir,
			"--data-dir", filepath.Join(dir, "data-"+name), "--store", "postgres", "--migrate",
			"--listen", listen, "--metrics-listen", "off", "--max-failures", fmt.Sprint(rpMaxFails),
			"--rate-limit", "1000000", "--rate-burst", "1000000", "--log-format", "text", "--log-level", "warn"}
	}
	logPath := func(name string) string { return filepath.Join(dir, "serve-"+name+".log") }
	a := testbin.StartChild(t, bin, childEnv, logPath("A"), serveArgs("A", "127.0.0.1:0"))
	b := testbin.StartChild(t, bin, childEnv, logPath("B"), serveArgs("B", "127.0.0.1:0"))
	urls := [2]string{a.URL, b.URL}
	t.Logf("replica A at %s, replica B at %s, one database (started in %v)", a.URL, b.URL, time.Since(start).Round(time.Millisecond))

	// direct talks to one replica; rr alternates them.
	direct := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: rpWorkers}}
	defer direct.CloseIdleConnections()
	rr := newRoundRobin(t, a.URL, b.URL)
	defer rr.base.CloseIdleConnections()
	rp := &replicas{t: t, urls: urls, direct: direct, rr: rr, hc: &http.Client{Timeout: 30 * time.Second, Transport: rr}}
	k := &kill9{t: t, d: d, hc: rp.hc, bundleFile: bundleFile} // its enrolment helpers, over the round-robin client
	ctx := context.Background()

	// Both replicas sign with one token key: a token of either verifies with the keys
	// of both.
	var jwks [2]string
	for i, u := range urls {
		st, body := do(t, direct, "GET", u+"/.well-known/jwks.json", "", nil, nil)
		if st != http.StatusOK {
			t.Fatalf("replica %s: jwks: %d %s", replicaName[i], st, body)
		}
		jwks[i] = string(body)
	}
	if jwks[replicaA] != jwks[replicaB] {
		t.Fatalf("the replicas publish different token keys:\nA: %s\nB: %s", jwks[replicaA], jwks[replicaB])
	}

	// The identities of the burst, enrolled through the round-robin client (code
	// created on one replica, redeemed on the other, as it falls).
	var idents []*rpIdent
	for _, kind := range []struct {
		name string
		n    int
	}{{"good", rpGood}, {"lockout", rpLockout}, {"wrong", rpWrong}, {"mixed", rpMixed}, {"revoked", rpRevoked}} {
		for i := range kind.n {
			idents = append(idents, &rpIdent{kind: kind.name, name: fmt.Sprintf("%s-%d@example.test", kind.name, i)})
		}
	}
	testbin.RunAll(8, len(idents), func(i int) {
		idents[i].cl, idents[i].id, idents[i].err = k.enrol(a.URL, idents[i].name)
	})
	for _, id := range idents {
		if id.err != nil {
			t.Fatalf("enrolling %s over both replicas: %v", id.name, id.err)
		}
	}
	t.Logf("set-up: %d identities enrolled over both replicas in %v", len(idents), time.Since(start).Round(time.Millisecond))

	// Pass 1 on A and pass 2 on B, then B and A, through the client library.
	probe := idents[0]
	for _, first := range []int{replicaA, replicaB} {
		rr.align(first)
		tr := &rpTrace{}
		if _, err := probe.cl.Login(tr.context(ctx), a.URL, []byte(rpPIN)); err != nil {
			t.Fatalf("%s: pass 1 on %s, pass 2 on the other: %v", probe.name, replicaName[first], err)
		}
		want := []rpHop{{"/v1/login/start", first, true, false}, {"/v1/login/finish", 1 - first, true, false}}
		if got := tr.hopList(); !slices.Equal(got, want) {
			t.Fatalf("%s: the login's requests went %v, want %v", probe.name, got, want)
		}
	}

	// The same checks with the passes in hand (harness's client): a session is single
	// use across replicas, and a revocation on A holds on B at once.
	hA := &harness{e: &env{d: d}, url: a.URL, http: direct}
	dave := hA.enrol(t, wire.EnrolmentRequest{ID: "dave@example.test"}, rpPIN)
	for n := range 4 {
		first := n % 2
		s, err := rp.start(dave, rpPIN, first)
		if err != nil {
			t.Fatalf("single use, session %d: pass 1 on %s: %v", n, replicaName[first], err)
		}
		// rpReplays copies of pass 2 to each replica at once: one logs in.
		statuses := make([]int, 2*rpReplays)
		errs := make([]error, 2*rpReplays)
		testbin.RunAll(len(statuses), len(statuses), func(i int) {
			statuses[i], _, errs[i] = rp.finish(s, i%2)
		})
		var ok [2]int
		for i, st := range statuses {
			if st == http.StatusOK {
				ok[i%2]++
			}
		}
		if ok[replicaA]+ok[replicaB] != 1 {
			t.Fatalf("single use, session %d (pass 1 on %s): one pass 2 sent %d times to each replica at once logged in %d times on A and %d on B, want once",
				n, replicaName[first], rpReplays, ok[replicaA], ok[replicaB])
		}
		for i, st := range statuses {
			switch {
			case errs[i] != nil:
				t.Fatalf("single use, session %d: pass 2 on %s: %d %v", n, replicaName[i%2], st, errs[i])
			case st != http.StatusOK && st != http.StatusNotFound:
				t.Fatalf("single use, session %d: a copy of pass 2 on %s: %d, want 200 once and 404 unknown_session", n, replicaName[i%2], st)
			}
		}
		for _, i := range []int{replicaA, replicaB} {
			if st, body, err := rp.finish(s, i); err != nil || st != http.StatusNotFound {
				t.Fatalf("single use, session %d: pass 2 replayed on %s after the login: %d %s %v, want 404 unknown_session", n, replicaName[i], st, body, err)
			}
		}
	}
	carol := hA.enrol(t, wire.EnrolmentRequest{ID: "carol@example.test"}, rpPIN)
	before, err := rp.start(carol, rpPIN, replicaB)
	if err != nil {
		t.Fatalf("carol: pass 1 on B before the revocation: %v", err)
	}
	if st, body := do(t, direct, "POST", a.URL+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{ID: "carol@example.test"}, nil); st != http.StatusOK {
		t.Fatalf("carol: revoke on A: %d %s", st, body)
	}
	if st, body, err := rp.finish(before, replicaB); err != nil || st != http.StatusUnauthorized {
		t.Errorf("carol: revoked on A; pass 2 on B of a login B started before the revocation: %d %s %v, want 401", st, body, err)
	}
	for _, pair := range [][2]int{{replicaB, replicaB}, {replicaA, replicaB}, {replicaB, replicaA}} {
		s, err := rp.start(carol, rpPIN, pair[0])
		if err != nil {
			t.Fatalf("carol: pass 1 on %s after the revocation: %v", replicaName[pair[0]], err)
		}
		if st, body, err := rp.finish(s, pair[1]); err != nil || st != http.StatusUnauthorized {
			t.Errorf("carol: revoked on A; the right PIN with pass 1 on %s and pass 2 on %s: %d %s %v, want 401",
				replicaName[pair[0]], replicaName[pair[1]], st, body, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	pending := hA.enrol(t, wire.EnrolmentRequest{ID: "pending@example.test"}, rpPIN)
	t.Logf("cross-replica passes, single use and revocation checked at %v", time.Since(start).Round(time.Millisecond))

	// The lockout is exact across replicas: the wrong PINs of the lockout identities
	// all at once over both replicas (no kill here, so every answer comes) block each,
	// the n-th failure answering max(0, max-n) tries left, once.
	var lockout []*rpIdent
	for _, id := range idents {
		if id.kind == "lockout" {
			for range rpWrongTries {
				lockout = append(lockout, id)
			}
		}
	}
	servedBefore := rr.served()
	testbin.RunAll(len(lockout), len(lockout), func(i int) { rp.login(lockout[i], rpWrongPIN) })
	if served := rr.served(); served[replicaA] == servedBefore[replicaA] || served[replicaB] == servedBefore[replicaB] {
		t.Errorf("the lockout logins did not use both replicas: %v requests answered by A and B before, %v after", servedBefore, served)
	}
	for _, err := range rp.unexpected {
		t.Error(err)
	}
	for _, id := range idents {
		if id.kind != "lockout" {
			continue
		}
		if id.fails != rpWrongTries || id.uncertain != 0 {
			t.Errorf("%s: %d wrong PINs at once: %d failures answered, %d lost", id.name, rpWrongTries, id.fails, id.uncertain)
		}
		if msg := checkTries(id.tries, rpWrongTries, 0); msg != "" {
			t.Errorf("%s: %d wrong PINs at once over both replicas: %s", id.name, rpWrongTries, msg)
		}
		for r, u := range urls {
			if info := rp.info(u, id); info.Failures != rpWrongTries || info.DayFailures != rpWrongTries || info.State != wire.StateBlocked {
				t.Errorf("%s: %d wrong PINs at once; replica %s lists %d failures, %d today, state %s; want %d, %d, %s",
					id.name, rpWrongTries, replicaName[r], info.Failures, info.DayFailures, info.State, rpWrongTries, rpWrongTries, wire.StateBlocked)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("lockout: %d wrong PINs at once over both replicas blocked %d identities exactly, at %v",
		len(lockout), rpLockout, time.Since(start).Round(time.Millisecond))

	// The burst: 64 workers, right and wrong PINs and revocations in random order over
	// the round-robin client. Once rpKillAt operations have been answered, replica B
	// is killed (-9) and the burst goes on with A; B restarts at once on the same
	// database and port, and the burst goes on with both.
	var ops []func() bool // each reports whether it got an answer
	for _, id := range idents {
		switch id.kind {
		case "good":
			for range rpGoodTries {
				ops = append(ops, func() bool { return rp.login(id, rpPIN) })
			}
		case "lockout":
			for range rpBlockedPIN {
				ops = append(ops, func() bool { return rp.login(id, rpPIN) })
			}
		case "wrong":
			for range rpWrongTries {
				ops = append(ops, func() bool { return rp.login(id, rpWrongPIN) })
			}
		case "mixed":
			for range rpMixedRight {
				ops = append(ops, func() bool { return rp.login(id, rpPIN) })
			}
			for range rpMixedWrong {
				ops = append(ops, func() bool { return rp.login(id, rpWrongPIN) })
			}
		case "revoked":
			for range rpRevTries {
				ops = append(ops, func() bool { return rp.login(id, rpPIN) })
			}
			ops = append(ops, func() bool { return rp.revoke(id) })
		}
	}
	rand.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
	var answered, afterKill atomic.Int64
	var killed atomic.Bool
	var servedBeforeKill [2]int
	// Logins whose pass 1 A or B answers before the burst, and whose pass 2 goes to
	// the other replica after the kill (well within the sessions' 30 s).
	var kept [2][]*rpSession
	for r := range kept {
		for range rpPending {
			s, err := rp.start(pending, rpPIN, r)
			if err != nil {
				t.Fatalf("pass 1 on %s before the burst: %v", replicaName[r], err)
			}
			kept[r] = append(kept[r], s)
		}
	}
	var killOnce sync.Once
	firstB := b
	killNow, burstDone := make(chan struct{}), make(chan struct{})
	kill := func() {
		killOnce.Do(func() {
			servedBeforeKill = rr.served()
			killed.Store(true)
			firstB.Kill()
			close(killNow)
		})
	}
	burst := time.Now()
	go func() {
		defer close(burstDone)
		testbin.RunAll(rpWorkers, len(ops), func(i int) {
			wasKilled := killed.Load()
			if !ops[i]() {
				return
			}
			if wasKilled {
				afterKill.Add(1)
			}
			if answered.Add(1) == rpKillAt {
				kill()
			}
		})
	}()
	defer func() { <-burstDone }() // if the test stops early
	select {
	case <-killNow:
	case <-burstDone:
		t.Fatalf("the burst ended after %d answers, before the kill at %d", answered.Load(), rpKillAt)
	}
	firstB.Wait(t)
	killedAt := answered.Load()

	// The logins whose pass 1 a replica answered before the kill finish on the other:
	// the dead B's on A now, A's on B once it is back.
	finishKept := func(r int) {
		for n, s := range kept[r] {
			if st, body, err := rp.finish(s, 1-r); err != nil || st != http.StatusOK {
				t.Errorf("a login whose pass 1 %s answered before the kill, pass 2 on %s after: %d %s %v, want 200",
					replicaName[r], replicaName[1-r], st, body, err)
			} else if n == 0 {
				t.Logf("a login whose pass 1 %s answered before the kill finished on %s", replicaName[r], replicaName[1-r])
			}
		}
	}
	finishKept(replicaB)

	// B again, on the same database and port, while the burst goes on.
	restart := time.Now()
	restartedAt := answered.Load()
	b = testbin.StartChild(t, bin, childEnv, logPath("B"), serveArgs("B", hostOf(t, urls[replicaB])))
	if b.URL != urls[replicaB] {
		t.Fatalf("replica B restarted at %s, not at %s", b.URL, urls[replicaB])
	}
	servedAtRestart := rr.served()
	t.Logf("replica B killed after %d answers, restarted after %d, in %v", killedAt, restartedAt, time.Since(restart).Round(time.Millisecond))
	finishKept(replicaA)
	<-burstDone
	servedAfterBurst := rr.served()

	for _, err := range append(rp.unexpected, k.unexpected...) {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	switch {
	case servedBeforeKill[replicaA] == 0 || servedBeforeKill[replicaB] == 0:
		t.Fatalf("before the kill the burst did not use both replicas: %v requests answered by A and B", servedBeforeKill)
	case afterKill.Load() == 0:
		t.Fatalf("no operation sent after the kill was answered: the load did not go on on replica A")
	}
	var lost int
	for _, id := range idents {
		lost += id.uncertain
	}
	t.Logf("burst: %d operations, %d answered (%d of them sent after the kill of B), in %v; "+
		"%d passes 2 sent to B got no answer; requests answered by A and B: %v before the kill, %v after the restart",
		len(ops), answered.Load(), afterKill.Load(), time.Since(burst).Round(time.Millisecond), lost,
		servedBeforeKill, [2]int{servedAfterBurst[replicaA] - servedAtRestart[replicaA], servedAfterBurst[replicaB] - servedAtRestart[replicaB]})

	// The stored state, as both replicas list it, is what was answered.
	var blocked, revoked int
	for _, id := range idents {
		var got [2]wire.EnrolmentInfo
		for r, u := range urls {
			got[r] = rp.info(u, id)
		}
		if got[replicaA].State != got[replicaB].State || got[replicaA].Failures != got[replicaB].Failures ||
			got[replicaA].DayFailures != got[replicaB].DayFailures {
			t.Errorf("%s: the replicas list different states: A %+v, B %+v", id.name, got[replicaA], got[replicaB])
		}
		info := got[replicaA]
		// Every failure answered is counted once; a pass 2 lost with B may be counted.
		if info.DayFailures < id.fails || info.DayFailures > id.fails+id.uncertain {
			t.Errorf("%s: %d failures answered, %d passes 2 lost in flight; stored: %d failures today, want %d to %d",
				id.name, id.fails, id.uncertain, info.DayFailures, id.fails, id.fails+id.uncertain)
		}
		if info.Failures > info.DayFailures {
			t.Errorf("%s: %d consecutive failures stored, more than the %d of the day", id.name, info.Failures, info.DayFailures)
		}
		switch id.kind {
		case "good", "mixed":
			// Fewer wrong PINs than max: never blocked, unless a wrong PIN's pass 2
			// was lost with B, counted there, and sent again by the client.
			mayBlock := id.wrongFails+id.wrongLost >= rpMaxFails
			id.blocked = info.State == wire.StateBlocked
			switch {
			case id.blocked && !mayBlock:
				t.Errorf("%s: %d wrong PINs answered, %d lost with B; blocked", id.name, id.wrongFails, id.wrongLost)
			case !id.blocked && info.State != wire.StateActive:
				t.Errorf("%s: state %s, want %s", id.name, info.State, wire.StateActive)
			case id.rightRefused > 0 && !mayBlock:
				t.Errorf("%s: %d wrong PINs answered, %d lost with B; the right PIN refused %d times", id.name, id.wrongFails, id.wrongLost, id.rightRefused)
			}
			for _, tries := range id.tries {
				if !mayBlock && (tries < rpMaxFails-rpMixedWrong || tries >= rpMaxFails) {
					t.Errorf("%s: %d wrong PINs sent in all, but an answer said %d tries left", id.name, rpMixedWrong, tries)
				}
			}
			if mayBlock {
				t.Logf("%s: %d wrong PINs answered, %d lost with B (and sent again by the client): %s, %d failures", id.name, id.wrongFails, id.wrongLost, info.State, info.DayFailures)
			}
		case "lockout", "wrong":
			id.stored = info.Failures
			if info.Failures != info.DayFailures {
				t.Errorf("%s: never logged in, but %d consecutive failures stored and %d of the day", id.name, info.Failures, info.DayFailures)
			}
			// The n-th failure counted answers max(0, max-n) tries left: each answer
			// is one distinct n.
			if msg := checkTries(id.tries, info.Failures, id.uncertain); msg != "" {
				t.Errorf("%s: stored count %d; %s", id.name, info.Failures, msg)
			}
			if wantBlocked := info.Failures >= rpMaxFails; wantBlocked != (info.State == wire.StateBlocked) {
				t.Errorf("%s: %d failures stored (max %d), state %s", id.name, info.Failures, rpMaxFails, info.State)
			}
			if info.State == wire.StateBlocked {
				blocked++
			} else if id.kind == "lockout" {
				t.Errorf("%s: blocked before the burst, listed as %s after it", id.name, info.State)
			}
		case "revoked":
			switch {
			case id.revokeAcked && (info.State != wire.StateRevoked || info.Revoked == nil):
				t.Errorf("%s: revocation answered, listed as %s", id.name, info.State)
			case !id.revokeAcked: // lost with B: revoke again, on the restarted B
				if st, body := do(t, direct, "POST", b.URL+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{ID: id.name}, nil); st != http.StatusOK {
					t.Fatalf("%s: revoke on the restarted B: %d %s", id.name, st, body)
				}
				id.revokeAcked = true
			}
			revoked++
		}
	}

	// Both replicas enforce it: the right PIN logs in the good and mixed identities and
	// is refused to the blocked and revoked ones; an identity with wrong PINs that is
	// not blocked (its wrong PINs lost with B) counts on from its stored count.
	servedBefore = rr.served()
	testbin.RunAll(8, len(idents), func(i int) {
		id := idents[i]
		for n := range 2 {
			tr := &rpTrace{}
			pin := rpPIN
			if id.kind == "wrong" && id.stored < rpMaxFails {
				pin = rpWrongPIN
			}
			_, err := id.cl.Login(tr.context(ctx), a.URL, []byte(pin))
			var wrong *client.WrongPINError
			switch want := rpMaxFails - id.stored - n - 1; {
			case (id.kind == "good" || id.kind == "mixed") && !id.blocked && err != nil:
				rp.fail("%s: after the restart, the right PIN (requests %v): %v", id.name, tr.hopList(), err)
			case id.kind == "mixed" && id.blocked && !errors.Is(err, client.ErrBlocked):
				rp.fail("%s: blocked; after the restart, the right PIN (requests %v): %v, want %v", id.name, tr.hopList(), err, client.ErrBlocked)
			case (id.kind == "lockout" || id.kind == "wrong") && want <= 0 && !errors.Is(err, client.ErrBlocked):
				rp.fail("%s: %d failures stored; after the restart, PIN %s (requests %v): %v, want %v", id.name, id.stored+n, pin, tr.hopList(), err, client.ErrBlocked)
			case id.kind == "wrong" && want > 0 && (!errors.As(err, &wrong) || wrong.TriesLeft != want):
				rp.fail("%s: %d failures stored; after the restart, a wrong PIN (requests %v): %v, want %d tries left", id.name, id.stored+n, tr.hopList(), err, want)
			case id.kind == "revoked" && !errors.Is(err, client.ErrWrongPIN) && !errors.Is(err, client.ErrBlocked):
				rp.fail("%s: revoked; after the restart, the right PIN (requests %v): %v, want a refusal", id.name, tr.hopList(), err)
			}
		}
	})
	for _, err := range rp.unexpected {
		t.Error(err)
	}
	if served := rr.served(); served[replicaB] == servedBefore[replicaB] {
		t.Errorf("the restarted replica B answered none of the logins after the restart")
	}
	t.Logf("after the restart: %d identities blocked and %d revoked as answered, enforced by both replicas; test done in %v",
		blocked, revoked, time.Since(start).Round(time.Millisecond))
}

// replicas holds the shared state of TestReplicas.
type replicas struct {
	t      *testing.T
	urls   [2]string
	direct *http.Client // to one replica by its URL
	rr     *roundRobin
	hc     *http.Client // over rr

	mu         sync.Mutex
	unexpected []error // answers no operation expects
}

// An rpIdent is an identity of the burst and what the burst answered it.
type rpIdent struct {
	kind, name string
	cl         *client.Client
	id         pairing.IDHash
	err        error

	// Under replicas.mu:
	stored       int   // its failure count stored after the burst
	fails        int   // login failures answered
	tries        []int // the tries left they answered
	uncertain    int   // passes 2 that got no answer (in flight on B when it died)
	wrongFails   int   // failures answered to wrong PINs
	wrongLost    int   // wrong PINs' passes 2 that got no answer
	rightRefused int   // right PINs refused (mixed identities)
	blocked      bool  // listed as blocked after the burst
	revokeSent   bool  // its revocation was sent
	revokeAcked  bool  // and answered
}

func (rp *replicas) fail(format string, args ...any) {
	rp.mu.Lock()
	rp.unexpected = append(rp.unexpected, fmt.Errorf(format, args...))
	rp.mu.Unlock()
}

// login logs id in with pin over the round-robin client and records the answer.
func (rp *replicas) login(id *rpIdent, pin string) bool {
	rp.mu.Lock()
	revoked := id.revokeAcked
	rp.mu.Unlock()
	tr := &rpTrace{}
	_, err := id.cl.Login(tr.context(context.Background()), rp.urls[replicaA], []byte(pin))
	var wrong *client.WrongPINError
	var api *client.APIError
	tries := -1
	switch {
	case err == nil:
	case errors.As(err, &wrong):
		tries = wrong.TriesLeft
	case errors.Is(err, client.ErrBlocked):
		tries = 0
	case errors.As(err, &api):
		rp.fail("%s: login (requests %v): %v", id.name, tr.hopList(), err)
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	id.uncertain += tr.uncertain()
	if pin != rpPIN {
		id.wrongLost += tr.uncertain()
	}
	switch {
	case err == nil && pin != rpPIN:
		rp.unexpected = append(rp.unexpected, fmt.Errorf("%s: a wrong PIN logged in (requests %v)", id.name, tr.hopList()))
	case err == nil && id.kind == "lockout":
		rp.unexpected = append(rp.unexpected, fmt.Errorf("%s: blocked before the burst; it logged in (requests %v)", id.name, tr.hopList()))
	case err == nil && revoked:
		rp.unexpected = append(rp.unexpected, fmt.Errorf("%s: its revocation was answered before this login started; it logged in (requests %v)", id.name, tr.hopList()))
	case err == nil:
	case tries < 0:
		return api != nil // no answer: B died with it
	default:
		id.fails++
		id.tries = append(id.tries, tries)
		if pin != rpPIN {
			id.wrongFails++
		}
		if pin == rpPIN && id.kind == "mixed" {
			id.rightRefused++ // judged after the burst
			return true
		}
		if pin == rpPIN && id.kind == "lockout" && tries != 0 {
			rp.unexpected = append(rp.unexpected, fmt.Errorf("%s: blocked, but an answer said %d tries left (requests %v)", id.name, tries, tr.hopList()))
		}
		if pin == rpPIN && id.kind != "lockout" && (id.kind != "revoked" || !id.revokeSent) {
			rp.unexpected = append(rp.unexpected, fmt.Errorf("%s: the right PIN refused, %d tries left (requests %v)", id.name, tries, tr.hopList()))
		}
	}
	return true
}

// revoke revokes id through the round-robin client.
func (rp *replicas) revoke(id *rpIdent) bool {
	rp.mu.Lock()
	id.revokeSent = true
	rp.mu.Unlock()
	st, body, err := tryDo(rp.hc, "POST", rp.urls[replicaA]+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{IDHash: hex.EncodeToString(id.id[:])}, nil)
	if err != nil {
		return false
	}
	if st != http.StatusOK {
		rp.fail("%s: revoke: %d %s", id.name, st, body)
		return true
	}
	rp.mu.Lock()
	id.revokeAcked = true
	rp.mu.Unlock()
	return true
}

// info lists id's enrolment as the replica at url does.
func (rp *replicas) info(u string, id *rpIdent) wire.EnrolmentInfo {
	t := rp.t
	t.Helper()
	var list wire.EnrolmentList
	if st, body := do(t, rp.direct, "GET", u+"/v1/admin/enrolments?id="+url.QueryEscape(id.name), testAdmin, nil, &list); st != http.StatusOK {
		t.Fatalf("%s: listing on %s: %d %s", id.name, u, st, body)
	}
	if len(list.Enrolments) != 1 || list.Enrolments[0].IDHash != hex.EncodeToString(id.id[:]) {
		t.Fatalf("%s: listing on %s: %+v, want its one enrolment", id.name, u, list.Enrolments)
	}
	return list.Enrolments[0]
}

// An rpSession is a login whose pass 1 a replica answered, its pass 2 ready to send.
type rpSession struct {
	cs    *pairing.ClientSession
	pass2 []byte
}

// start sends pass 1 of c's login with pin to one replica and makes pass 2.
func (rp *replicas) start(c *tclient, pin string, replica int) (*rpSession, error) {
	dom := pairing.Domain{Name: c.domain, PermitPeriod: c.period}
	pc := &pairing.Client{Domain: dom, IDHash: c.id, Token: c.token, Slot: dom.Slot(time.Now())}
	cs, p1, err := pc.Start(nil, pinBytes(pin))
	if err != nil {
		return nil, err
	}
	var req wire.StartRequest
	req.Pass1, _ = p1.MarshalBinary()
	var sr wire.StartResponse
	st, body, err := tryDo(rp.direct, "POST", rp.urls[replica]+"/v1/login/start", "", req, &sr)
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		return nil, fmt.Errorf("pass 1: %d %s", st, body)
	}
	var ch pairing.Challenge
	if err := ch.UnmarshalBinary(sr.Challenge); err != nil {
		return nil, err
	}
	p2, err := cs.Respond(&ch, nil)
	if err != nil {
		return nil, err
	}
	s := &rpSession{cs: cs}
	s.pass2, _ = p2.MarshalBinary()
	return s, nil
}

// finish sends s's pass 2 to one replica; a 200 must carry the server's key
// confirmation and an access token.
func (rp *replicas) finish(s *rpSession, replica int) (int, []byte, error) {
	var fin wire.FinishResponse
	st, body, err := tryDo(rp.direct, "POST", rp.urls[replica]+"/v1/login/finish", "", wire.FinishRequest{Pass2: s.pass2}, &fin)
	if err != nil || st != http.StatusOK {
		return st, body, err
	}
	var f pairing.Finish
	if err := f.UnmarshalBinary(fin.Finish); err != nil {
		return st, body, err
	}
	if _, err := s.cs.Finish(&f); err != nil {
		return st, body, fmt.Errorf("the server is not authentic: %w", err)
	}
	if fin.AccessToken == "" {
		return st, body, errors.New("a login without an access token")
	}
	return st, body, nil
}

// checkTries checks the tries left answered to an identity that only ever got wrong
// PINs against its stored failure count: the n-th failure counted answers
// max(0, rpMaxFails-n), so each positive answer comes once, and with no pass 2 lost
// (uncertain 0) the answers are exactly those of failures 1 to count.
func checkTries(tries []int, count, uncertain int) string {
	got := slices.Sorted(slices.Values(tries))
	slices.Reverse(got)
	if uncertain == 0 {
		var want []int
		for n := 1; n <= count; n++ {
			want = append(want, max(0, rpMaxFails-n))
		}
		if !slices.Equal(got, want) {
			return fmt.Sprintf("tries left answered %v, want %v", got, want)
		}
		return ""
	}
	for i, n := range got {
		if n < 0 || n >= rpMaxFails || (n > 0 && i > 0 && got[i-1] == n) || n < rpMaxFails-count {
			return fmt.Sprintf("tries left answered %v (%d passes 2 lost): not distinct failures of %d", got, uncertain, count)
		}
	}
	return ""
}

func hostOf(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Host
}

// roundRobin is an http.RoundTripper that sends each request to the next of two
// replicas, whatever host its URL names. A request that could not connect (nothing
// was sent: the replica is down) goes to the other replica; any other error is the
// caller's. The rpTrace in a request's context, if any, records where its requests
// went.
type roundRobin struct {
	base  *http.Transport
	hosts [2]string
	next  atomic.Uint64

	mu       sync.Mutex
	answered [2]int
}

func newRoundRobin(t *testing.T, urlA, urlB string) *roundRobin {
	return &roundRobin{base: &http.Transport{MaxIdleConnsPerHost: rpWorkers}, hosts: [2]string{hostOf(t, urlA), hostOf(t, urlB)}}
}

// align makes the next request go to replica i (for requests one after the other).
func (rr *roundRobin) align(i int) {
	n := rr.next.Load()
	if int(n%2) != i {
		rr.next.Add(1)
	}
}

// served returns how many requests each replica answered.
func (rr *roundRobin) served() [2]int {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.answered
}

func (rr *roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	tr, _ := req.Context().Value(rpTraceKey{}).(*rpTrace)
	first := int(rr.next.Add(1)-1) % 2
	var resp *http.Response
	var err error
	for k := range 2 {
		i := (first + k) % 2
		out := req.Clone(req.Context())
		out.URL.Host, out.Host = rr.hosts[i], ""
		if k > 0 && req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				break
			}
			if out.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		resp, err = rr.base.RoundTrip(out)
		refused := err != nil && connectFailed(err)
		if tr != nil {
			tr.add(rpHop{path: req.URL.Path, replica: i, answered: err == nil, refused: refused})
		}
		if err == nil {
			rr.mu.Lock()
			rr.answered[i]++
			rr.mu.Unlock()
		}
		if !refused {
			break
		}
	}
	return resp, err
}

// connectFailed reports whether err is a failure to connect: the request was not sent.
func connectFailed(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}

// An rpTrace records the requests of one operation (rpTrace.context).
type rpTrace struct {
	mu   sync.Mutex
	hops []rpHop
}

// An rpHop is one request: its path, the replica it went to, whether it got an answer
// and whether it could not connect.
type rpHop struct {
	path              string
	replica           int
	answered, refused bool
}

func (h rpHop) String() string {
	switch {
	case h.answered:
		return fmt.Sprintf("%s@%s", h.path, replicaName[h.replica])
	case h.refused:
		return fmt.Sprintf("%s@%s(refused)", h.path, replicaName[h.replica])
	}
	return fmt.Sprintf("%s@%s(no answer)", h.path, replicaName[h.replica])
}

type rpTraceKey struct{}

func (tr *rpTrace) context(ctx context.Context) context.Context {
	return context.WithValue(ctx, rpTraceKey{}, tr)
}

func (tr *rpTrace) add(h rpHop) {
	tr.mu.Lock()
	tr.hops = append(tr.hops, h)
	tr.mu.Unlock()
}

func (tr *rpTrace) hopList() []rpHop {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.hops)
}

// uncertain counts the passes 2 that were sent and got no answer: the replica may
// have counted them.
func (tr *rpTrace) uncertain() int {
	n := 0
	for _, h := range tr.hopList() {
		if h.path == "/v1/login/finish" && !h.answered && !h.refused {
			n++
		}
	}
	return n
}
