package bench

import (
	"runtime"
	"testing"

	bls "github.com/consensys/gnark-crypto/ecc/bls12-381"

	"github.com/polyroot/polyroot/pairing"
)

// BenchmarkServerLoginCore is everything the pairing core of the auth server does per
// login, in process: decode pass 1, the challenge (and its encoding), decode pass 2,
// Finish (the pairing check, the key pairing, the key schedule, the tags) and the
// encoding of the answer. No HTTP, no store, no access token. The clients' work runs
// with the timer stopped, 64 logins at a time. Compare with
// BenchmarkLimitPairingCheckFixedQ in the same run. On Linux it also reports
// cpu-ns/op, the CPU time of the timed work on its own thread: on a loaded machine,
// where ns/op counts the waits for a CPU too, that is the figure to compare (with
// BenchmarkLimitCPU's).
func BenchmarkServerLoginCore(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f := getFixture(b)
	var cpu int64
	cpuOK := true
	timed := func(work func()) {
		t0, ok0 := threadCPU()
		work()
		t1, ok1 := threadCPU()
		cpu += t1 - t0
		cpuOK = cpuOK && ok0 && ok1
	}
	const chunk = 64
	type login struct {
		cs  *pairing.ClientSession
		ss  *pairing.ServerSession
		msg []byte
	}
	logins := make([]login, chunk)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(chunk, b.N-done)
		b.StopTimer()
		for i := range n {
			cs, p1, err := f.clients[(done+i)%len(f.clients)].Start(nil, testPIN)
			if err != nil {
				b.Fatal(err)
			}
			logins[i].cs = cs
			if logins[i].msg, err = p1.MarshalBinary(); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		timed(func() {
			for i := range n { // server: pass 1 to challenge
				p1 := new(pairing.Pass1)
				if err := p1.UnmarshalBinary(logins[i].msg); err != nil {
					b.Fatal(err)
				}
				ss, ch, err := f.verifier.Challenge(nil, p1, f.now)
				if err != nil {
					b.Fatal(err)
				}
				logins[i].ss = ss
				if logins[i].msg, err = ch.MarshalBinary(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.StopTimer()
		for i := range n {
			ch := new(pairing.Challenge)
			if err := ch.UnmarshalBinary(logins[i].msg); err != nil {
				b.Fatal(err)
			}
			p2, err := logins[i].cs.Respond(ch, nil)
			if err != nil {
				b.Fatal(err)
			}
			if logins[i].msg, err = p2.MarshalBinary(); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		timed(func() {
			for i := range n { // server: pass 2 to finish
				p2 := new(pairing.Pass2)
				if err := p2.UnmarshalBinary(logins[i].msg); err != nil {
					b.Fatal(err)
				}
				fin, key, err := logins[i].ss.Finish(p2, nil)
				if err != nil || len(key) != pairing.SessionKeySize {
					b.Fatalf("Finish: %v", err)
				}
				if logins[i].msg, err = fin.MarshalBinary(); err != nil {
					b.Fatal(err)
				}
			}
		})
		done += n
	}
	if cpuOK {
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkLimitCPU is BenchmarkLimitPairingCheckFixedQ with the cpu-ns/op metric of
// BenchmarkServerLoginCore: the floor to compare that benchmark's CPU time with.
func BenchmarkLimitCPU(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	points, linesQ, linesSQ := limitSetup(b)
	b.ReportAllocs()
	b.ResetTimer()
	t0, ok0 := threadCPU()
	for range b.N {
		ok, err := bls.PairingCheckFixedQ(points, []lines{linesQ, linesSQ})
		if err != nil || !ok {
			b.Fatalf("pairing check failed: %v %v", ok, err)
		}
	}
	if t1, ok1 := threadCPU(); ok0 && ok1 {
		b.ReportMetric(float64(t1-t0)/float64(b.N), "cpu-ns/op")
	}
}
