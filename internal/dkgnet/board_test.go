package dkgnet

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/dkg"
)

func serve(b *Board, method, path, ctype string, body []byte) (int, string) {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	w := httptest.NewRecorder()
	b.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

// completed runs a 2-of-3 ceremony and returns it with its transcript.
func completed(t testing.TB, name string) (*ceremony, *dkg.Transcript) {
	c := newCeremony(t, name, 3, 2)
	res, errs := c.run(20*time.Second, nil, nil)
	for k, err := range errs {
		if err != nil {
			t.Fatalf("DTA %d: %v", k+1, err)
		}
	}
	return c, res[0].Transcript.DKG
}

func resign(m *dkg.Message, key ed25519.PrivateKey) []byte {
	raw := m.Bytes()
	body := raw[:len(raw)-ed25519.SignatureSize]
	m.Signature = ed25519.Sign(key, append([]byte("polyroot/v1 dkg message\x00"), body...))
	return m.Bytes()
}

func TestBoardRejects(t *testing.T) {
	c, tr := completed(t, "board")
	_, other := completed(t, "board, another session")
	b, err := NewBoard(c.file, nil)
	if err != nil {
		t.Fatal(err)
	}
	deal := tr.Messages[0] // DTA 1's deal
	if deal.Kind != dkg.KindDeal || deal.From != 1 {
		t.Fatalf("first message: %s from %d", deal.Kind, deal.From)
	}
	post := func(path string, body []byte) (int, string) { return serve(b, "POST", path, contentType, body) }
	want := func(what string, code int, gotCode int, body, substr string) {
		t.Helper()
		if gotCode != code || !strings.Contains(body, substr) {
			t.Fatalf("%s: %d %s, want %d %q", what, gotCode, body, code, substr)
		}
	}
	code, body := post(PathMessages, deal.Bytes())
	want("before the session", 409, code, body, "not_ready")
	if err := b.setSession(tr.Session); err != nil {
		t.Fatal(err)
	}
	code, body = post(PathMessages, deal.Bytes())
	want("a deal", 204, code, body, "")
	code, body = post(PathMessages, deal.Bytes())
	want("the same deal again", 200, code, body, "")

	// Equivocation: a second different deal is kept (evidence), a third refused.
	for n, wantCode := range []int{204, 409} {
		m, _ := dkg.DecodeMessage(deal.Bytes())
		m.Sealed[0].Box[0] ^= byte(n + 1)
		code, body = post(PathMessages, resign(m, c.dtas[0].key))
		want(fmt.Sprintf("different deal %d", n+2), wantCode, code, body, "")
	}
	if got := b.items("deal"); len(got) != 2 {
		t.Fatalf("the board holds %d deals of DTA 1, want 2", len(got))
	}

	bad := deal.Bytes()
	bad[len(bad)-1] ^= 1
	code, body = post(PathMessages, bad)
	want("bad signature", 403, code, body, "bad signature")
	m, _ := dkg.DecodeMessage(deal.Bytes())
	m.From = 2 // DTA 1's deal claimed by DTA 2
	code, body = post(PathMessages, resign(m, c.dtas[0].key))
	want("claimed by another", 403, code, body, "bad signature")
	code, body = post(PathMessages, other.Messages[0].Bytes())
	want("another session", 400, code, body, "wrong_session")
	// Header and signature come before any point is decoded: a deal with a point that
	// is not on the curve is refused for its signature, unless signed.
	hdr := len("PRDKG\x01") + 32 + 1 + 4
	badPoint := append([]byte(nil), deal.Bytes()...)
	copy(badPoint[hdr+2:hdr+2+48], append([]byte{0x9f}, bytes.Repeat([]byte{0xff}, 47)...))
	code, body = post(PathMessages, badPoint)
	want("unsigned, bad point", 403, code, body, "bad signature")
	sigAt := len(badPoint) - ed25519.SignatureSize
	copy(badPoint[sigAt:], ed25519.Sign(c.dtas[0].key, append([]byte("polyroot/v1 dkg message\x00"), badPoint[:sigAt]...)))
	code, body = post(PathMessages, badPoint)
	want("signed, bad point", 400, code, body, "bad_message")
	badPoint[hdr-1] = 9 // no DTA 9
	code, body = post(PathMessages, badPoint)
	want("unknown sender, bad point", 403, code, body, "who may not send it")
	copy(badPoint[len("PRDKG\x01"):], other.Messages[0].Session[:])
	code, body = post(PathMessages, badPoint)
	want("another session, bad point", 400, code, body, "wrong_session")
	code, body = post(PathMessages, []byte("PRDKG\x01junk"))
	want("garbage", 400, code, body, "bad_message")
	code, body = post(PathMessages, make([]byte, b.pl.maxMsg+1))
	want("too large", 413, code, body, "body_too_large")
	code, body = serve(b, "POST", PathMessages, "application/json", deal.Bytes())
	want("content type", 415, code, body, "unsupported_media_type")

	// Notices.
	var sp [32]byte
	sp[0] = 9
	stranger := testKey("stranger", 1)
	code, body = post(PathNotices, newNotice(stranger, noticeHello, 0, b.pl.hash, sp).bytes())
	want("hello of a stranger", 403, code, body, "not a party")
	code, body = post(PathNotices, newNotice(c.dtas[1].key, noticeHello, 0, [32]byte{1}, sp).bytes())
	want("hello for another file", 400, code, body, "wrong_session")
	n := newNotice(c.dtas[1].key, noticeHello, 0, b.pl.hash, sp)
	n.sig[0] ^= 1
	code, body = post(PathNotices, n.bytes())
	want("hello with a bad signature", 403, code, body, "bad signature")
	code, body = post(PathNotices, newNotice(c.dtas[1].key, noticeDone, dkg.KindDeal, [32]byte{1}, [32]byte{}).bytes())
	want("done for another session", 400, code, body, "wrong_session")
	code, body = post(PathNotices, make([]byte, noticeSize))
	want("garbage notice", 400, code, body, "bad_notice")

	// Reads: an open round is not served; a closed one is, and then takes no posts.
	pollWait = 10 * time.Millisecond
	defer func() { pollWait = 10 * time.Second }()
	code, body = serve(b, "GET", PathRounds+"deal", "", nil)
	want("open round", 503, code, body, "round_open")
	code, body = serve(b, "GET", PathRounds+"nope", "", nil)
	want("unknown round", 404, code, body, "no_round")
	b.closeRound("deal")
	code, body = serve(b, "GET", PathRounds+"deal", "", nil)
	items, err := splitItems([]byte(body))
	if code != 200 || err != nil || len(items) != 2 {
		t.Fatalf("closed round: %d, %d items, %v", code, len(items), err)
	}
	code, body = post(PathMessages, tr.Messages[1].Bytes()) // DTA 2's deal
	want("closed round", 409, code, body, "round_closed")
}

func FuzzBoardPost(f *testing.F) {
	c, tr := completed(f, "fuzz board")
	for _, m := range tr.Messages {
		f.Add(true, m.Bytes())
	}
	var sp [32]byte
	sp[0] = 9
	pl, _ := newPlan(c.file)
	f.Add(false, newNotice(c.dtas[0].key, noticeHello, 0, pl.hash, sp).bytes())
	id, _ := tr.Session.ID()
	f.Add(false, newNotice(c.dtas[0].key, noticeDone, dkg.KindDeal, id, sp).bytes())
	f.Fuzz(func(t *testing.T, message bool, body []byte) {
		b, err := NewBoard(c.file, nil)
		if err != nil {
			t.Fatal(err)
		}
		b.setSession(tr.Session)
		path := PathNotices
		if message {
			path = PathMessages
		}
		code, resp := serve(b, "POST", path, contentType, body)
		switch code {
		case 200, 204, 400, 403, 409, 413:
		default:
			t.Fatalf("status %d: %s", code, resp)
		}
		if code/100 == 4 && !json.Valid([]byte(resp)) {
			t.Fatalf("error answer is not JSON: %q", resp)
		}
		if n, err := decodeNotice(body); err == nil && !bytes.Equal(n.bytes(), body) {
			t.Fatal("a notice decodes from a non-canonical encoding")
		}
		splitItems(body) // must not panic
	})
}

func FuzzParseSessionFile(f *testing.F) {
	c := newCeremony(f, "fuzz session", 3, 2)
	js, _ := json.Marshal(c.file)
	f.Add(js)
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := ParseSessionFile(data)
		if err != nil {
			return
		}
		if _, err := NewBoard(sf, nil); err != nil {
			t.Fatalf("a parsed session file makes no board: %v", err)
		}
	})
}

func FuzzParseTranscript(f *testing.F) {
	c := newCeremony(f, "fuzz transcript", 3, 2)
	res, errs := c.run(20*time.Second, nil, nil)
	if errs[0] != nil {
		f.Fatal(errs[0])
	}
	js, _ := json.Marshal(res[0].Transcript)
	f.Add(js)
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := ParseTranscript(data)
		if err != nil {
			return
		}
		if _, err := tr.Verify(); err != nil {
			return
		}
		again, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		if tr2, err := ParseTranscript(again); err != nil {
			t.Fatal(err)
		} else if _, err := tr2.Verify(); err != nil {
			t.Fatalf("a verified transcript no longer verifies after a round trip: %v", err)
		}
	})
}

func TestTranscriptTampered(t *testing.T) {
	c := newCeremony(t, "tampered", 3, 2)
	res, errs := c.run(20*time.Second, nil, nil)
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	js, _ := json.Marshal(res[0].Transcript)
	tr, _ := ParseTranscript(js)
	if _, err := tr.Verify(); err != nil {
		t.Fatal(err)
	}
	tr.confirms = tr.confirms[:2]
	if _, err := tr.Verify(); err == nil || !strings.Contains(err.Error(), "2 confirmations for 3 DTAs") {
		t.Fatalf("a missing confirmation: %v", err)
	}
	tr, _ = ParseTranscript(js)
	tr.confirms[1] = tr.confirms[0]
	if _, err := tr.Verify(); err == nil {
		t.Fatal("a confirmation of DTA 1 counted for DTA 2")
	}
	tr, _ = ParseTranscript(js)
	tr.DKG.Messages = tr.DKG.Messages[1:] // DTA 1's deal removed: the result changes
	if _, err := tr.Verify(); err == nil {
		t.Fatal("a transcript without a message verifies")
	}
}

func BenchmarkDKGHTTP(b *testing.B) {
	for _, n := range []int{5, 16} {
		b.Run(fmt.Sprintf("dtas=%d", n), func(b *testing.B) {
			c := newCeremony(b, fmt.Sprintf("bench %d", n), n, n/2+1)
			for b.Loop() {
				for _, d := range c.dtas {
					nb, _ := NewBoard(c.file, nil)
					d.board = nb
					d.srv.Config.Handler.(*handlerSlot).h.Store(nb)
				}
				_, errs := c.run(time.Minute, nil, nil)
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkReshareHTTP is a resharing t of n → t of n among the same DTAs (each deals
// its share and receives a new one), after one key generation outside the timing.
func BenchmarkReshareHTTP(b *testing.B) {
	for _, n := range []int{5, 16} {
		b.Run(fmt.Sprintf("dtas=%d", n), func(b *testing.B) {
			c := newCeremony(b, fmt.Sprintf("bench reshare %d", n), n, n/2+1)
			res, errs := c.run(time.Minute, nil, nil)
			for _, err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
			out, err := res[0].Transcript.Verify()
			if err != nil {
				b.Fatal(err)
			}
			f := *c.file
			f.Epoch, f.Nonce = 2, strings.Repeat("cd", 32)
			f.Reshare = &SessionReshare{Threshold: c.file.Threshold, Dealers: c.file.Members, PublicKey: hex.EncodeToString(out.PublicKey.Bytes())}
			for _, cm := range out.Commitments {
				f.Reshare.Commitments = append(f.Reshare.Commitments, hex.EncodeToString(cm.Bytes()))
			}
			c2 := &ceremony{file: &f, dtas: c.dtas}
			for b.Loop() {
				for _, d := range c2.dtas {
					nb, _ := NewBoard(c2.file, nil)
					d.board = nb
					d.srv.Config.Handler.(*handlerSlot).h.Store(nb)
				}
				_, errs := c2.run(time.Minute, nil, func(k int, cfg *Config) { cfg.OldShare = res[k].Share })
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func TestBoardBoundsWaitingReads(t *testing.T) {
	// Only so many GETs wait for an open round at once; one more is answered at once,
	// and every reader gets the round once it is closed.
	c := newCeremony(t, "waiting reads", 3, 2)
	b := c.dtas[0].board
	pollWait, maxWaitingExtra = time.Minute, 2
	defer func() { pollWait, maxWaitingExtra = 10*time.Second, 32 }()
	limit := 2*len(b.pl.parties) + maxWaitingExtra
	codes := make(chan int, limit)
	for range limit {
		go func() {
			code, _ := serve(b, "GET", PathRounds+"deal", "", nil)
			codes <- code
		}()
	}
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		b.mu.Lock()
		n := b.waiting
		b.mu.Unlock()
		if n == limit {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%d reads wait, want %d", n, limit)
		}
	}
	done := make(chan int)
	go func() {
		code, _ := serve(b, "GET", PathRounds+"deal", "", nil)
		done <- code
	}()
	select {
	case code := <-done:
		if code != 503 {
			t.Fatalf("one read too many: %d, want 503", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("one read too many waits too")
	}
	b.closeRound("deal")
	for range limit {
		if code := <-codes; code != 200 {
			t.Fatalf("a waiting read: %d, want 200", code)
		}
	}
	if code, _ := serve(b, "GET", PathRounds+"deal", "", nil); code != 200 {
		t.Fatalf("a read of the closed round: %d", code)
	}
}
