package wire_test

import (
	"bytes"
	"encoding/json"
	"reflect"
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

// generalStart and generalFinish are wire.StartRequest and wire.FinishRequest without
// their fast paths: UnmarshalStrict's general path decodes them.
type generalStart wire.StartRequest
type generalFinish wire.FinishRequest

// checkLoginFastPaths: whatever the fast paths of the login requests accept, the
// general path accepts too, with the same value; and through UnmarshalStrict either
// type decodes a body exactly as the general path does, error included.
func checkLoginFastPaths(t *testing.T, body []byte) (startFast, finishFast bool) {
	var s wire.StartRequest
	if startFast = s.UnmarshalStrictFast(body); startFast {
		var g generalStart
		if err := httpx.UnmarshalStrict(body, &g); err != nil {
			t.Fatalf("start: fast path accepted %q, the general path refuses it: %v", body, err)
		}
		if !reflect.DeepEqual(wire.StartRequest(g), s) {
			t.Fatalf("start %q: fast path %+v, general path %+v", body, s, g)
		}
	}
	var f wire.FinishRequest
	if finishFast = f.UnmarshalStrictFast(body); finishFast {
		var g generalFinish
		if err := httpx.UnmarshalStrict(body, &g); err != nil {
			t.Fatalf("finish: fast path accepted %q, the general path refuses it: %v", body, err)
		}
		if !reflect.DeepEqual(wire.FinishRequest(g), f) {
			t.Fatalf("finish %q: fast path %+v, general path %+v", body, f, g)
		}
	}
	var s2 wire.StartRequest
	var gs generalStart
	errS, errG := httpx.UnmarshalStrict(body, &s2), httpx.UnmarshalStrict(body, &gs)
	if (errS == nil) != (errG == nil) || errS != nil && errS.Error() != errG.Error() || errS == nil && !reflect.DeepEqual(wire.StartRequest(gs), s2) {
		t.Fatalf("start %q: %+v, %v; general path %+v, %v", body, s2, errS, gs, errG)
	}
	return startFast, finishFast
}

func TestLoginRequestFastPaths(t *testing.T) {
	for _, tc := range []struct {
		name         string
		body         string
		start, finis bool
	}{
		{"ok/start", `{"pass1":"AAECAwQ="}`, true, false},
		{"ok/start-every-member", ` { "pass1" : "AAECAwQ=" , "purpose":"renew","days":30,"domain":"api.example.com","unbound":true } `, true, false},
		{"ok/start-false-zero", `{"unbound":false,"days":0,"pass1":""}`, true, false},
		{"ok/empty-object", `{}`, true, true},
		{"ok/finish", `{"pass2":"AAECAwQ=","auth_request":"V1StGXR8_Z5jdHi6B-myT"}`, false, true},
		{"general/escape", `{"domain":"api\u002eexample.com"}`, false, false},
		{"general/non-ascii", `{"domain":"bücher.example"}`, false, false},
		{"general/null", `{"pass1":null}`, false, false},
		{"general/days-negative", `{"days":-1}`, false, false},
		{"general/days-leading-zero", `{"days":01}`, false, false},
		{"general/days-fraction", `{"days":1.0}`, false, false},
		{"general/days-exponent", `{"days":1e1}`, false, false},
		{"general/days-ten-digits", `{"days":1234567890}`, false, false},
		{"general/base64-newline", `{"pass1":"AAEC\nAwQ="}`, false, false},
		{"general/base64-url-alphabet", `{"pass1":"-_-_"}`, false, false},
		{"refused/bad-base64", `{"pass1":"AAECAwQ"}`, false, false},
		{"refused/duplicate", `{"pass1":"","pass1":""}`, false, false},
		{"refused/unknown-member", `{"pass1":"","x":1}`, false, false},
		{"refused/case", `{"Pass1":""}`, false, false},
		{"refused/trailing-data", `{"pass1":""} {}`, false, false},
		{"refused/trailing-comma", `{"pass1":"",}`, false, false},
		{"refused/unterminated", `{"pass1":""`, false, false},
		{"refused/bool-as-string", `{"unbound":"true"}`, false, false},
		{"refused/not-object", `[]`, false, false},
		{"refused/empty", ``, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, f := checkLoginFastPaths(t, []byte(tc.body)); s != tc.start || f != tc.finis {
				t.Fatalf("fast paths: start %v, finish %v; want %v, %v", s, f, tc.start, tc.finis)
			}
		})
	}
}

func FuzzLoginRequestFastPaths(f *testing.F) {
	f.Add([]byte(`{"pass1":"AAECAwQ=","domain":"api.example.com","unbound":true,"days":7,"purpose":"renew"}`))
	f.Add([]byte(`{"pass2":"AAECAwQ=","auth_request":"abc_-"}`))
	f.Add([]byte(` { "days" : 0 } `))
	f.Fuzz(func(t *testing.T, body []byte) { checkLoginFastPaths(t, body) })
}
