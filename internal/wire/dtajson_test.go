package wire_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/internal/wire"
)

// TestDTAResponseAppendJSON: AppendJSON gives exactly encoding/json's bytes.
func TestDTAResponseAppendJSON(t *testing.T) {
	promise := &wire.Promise{Origin: "polyroot/api.example.com/dta-1", Index: 1 << 40, LeafHash: bytes.Repeat([]byte{0xfb}, 32), Signature: bytes.Repeat([]byte{0xff}, 64)}
	for _, r := range []*wire.DTAResponse{
		{},
		{DTA: 3, Shares: []wire.DTAShare{}},
		{DTA: 1, Shares: []wire.DTAShare{{Sealed: []byte("sealed share"), Entry: []byte(`{"v":2}`), Promise: promise}}},
		{DTA: 2, Shares: []wire.DTAShare{
			{Slot: 20000, Sealed: []byte{0}, Entry: []byte("e1"), Promise: promise},
			{Slot: 20001, Sealed: []byte{}, Entry: nil, Promise: nil},
			{Entry: []byte{}, Promise: &wire.Promise{Origin: `<a & "b"> é` + "\n\u2028\x7f\xff"}},
		}},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AppendJSON([]byte("prefix")); string(got) != "prefix"+string(want) {
			t.Errorf("AppendJSON:\n got %s\nwant %s", got[len("prefix"):], want)
		}
	}
}

// generalRequest is wire.DTARequest without its fast path: UnmarshalStrict's general
// path decodes it.
type generalRequest struct {
	Ticket string `json:"ticket"`
}

// checkFastPath: whatever DTARequest's fast path accepts, the general path accepts too,
// with the same ticket.
func checkFastPath(t *testing.T, body []byte) (fast bool) {
	var r wire.DTARequest
	if !r.UnmarshalStrictFast(body) {
		return false
	}
	var g generalRequest
	if err := httpx.UnmarshalStrict(body, &g); err != nil {
		t.Fatalf("fast path accepted %q, the general path refuses it: %v", body, err)
	}
	if g.Ticket != r.Ticket {
		t.Fatalf("%q: fast path %q, general path %q", body, r.Ticket, g.Ticket)
	}
	return true
}

func TestDTARequestFastPath(t *testing.T) {
	for _, tc := range []struct {
		body string
		fast bool
	}{
		{`{"ticket":"eyJhbGciOiJFZERTQSJ9.eyJraW5kIjoiY2xpZW50In0.c2ln-_"}`, true},
		{" \t\r\n{ \"ticket\" :\n\"a.b.c\" }\n", true},
		{`{"ticket":""}`, true},
		{`{"ticket":" "}`, false},
		{`{"ticket":"a\u002eb"}`, false}, // an escape: the general path decides
		{`{"Ticket":"a.b.c"}`, false},
		{`{"ticket":"a.b.c","ticket":"d"}`, false},
		{`{"ticket":"a.b.c","x":1}`, false},
		{`{"ticket":"a.b.c"} {}`, false},
		{`{"ticket":"a b"}`, false},
		{`{"ticket":"a.b.c"`, false},
		{`{"ticket":1}`, false},
		{`[]`, false},
		{``, false},
	} {
		if got := checkFastPath(t, []byte(tc.body)); got != tc.fast {
			t.Errorf("%q: fast path %v, want %v", tc.body, got, tc.fast)
		}
		// Through UnmarshalStrict, DTARequest decodes exactly as the general path does.
		var r wire.DTARequest
		var g generalRequest
		errR, errG := httpx.UnmarshalStrict([]byte(tc.body), &r), httpx.UnmarshalStrict([]byte(tc.body), &g)
		if (errR == nil) != (errG == nil) || errR != nil && errR.Error() != errG.Error() || r.Ticket != g.Ticket {
			t.Errorf("%q: DTARequest %q, %v; general path %q, %v", tc.body, r.Ticket, errR, g.Ticket, errG)
		}
	}
}

func FuzzDTARequestFastPath(f *testing.F) {
	f.Add([]byte(`{"ticket":"a.b.c"}`))
	f.Add([]byte(` {"ticket" : "x"} `))
	f.Fuzz(func(t *testing.T, body []byte) { checkFastPath(t, body) })
}
