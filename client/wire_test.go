package client

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/translog"
)

// TestWireDTA checks that the mirrored DTA types encode like dta's own.
func TestWireDTA(t *testing.T) {
	orig := dta.Response{DTA: 2, Shares: []dta.Share{{Slot: 7, Share: []byte{1}, Proof: []byte{2}, Sealed: []byte{3},
		Entry: []byte("{}"), Promise: &translog.Promise{Origin: "o", Index: 1, LeafHash: []byte{4}, Signature: []byte{5}}}}}
	want, _ := json.Marshal(orig)
	d := json.NewDecoder(bytes.NewReader(want))
	d.DisallowUnknownFields()
	var mine dtaResponse
	if err := d.Decode(&mine); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(mine)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	a, _ := json.Marshal(dta.Request{Ticket: "x"})
	b, _ := json.Marshal(dtaRequest{Ticket: "x"})
	if !bytes.Equal(a, b) {
		t.Fatalf("request %s, want %s", b, a)
	}
}
