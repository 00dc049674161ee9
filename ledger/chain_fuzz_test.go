package ledger

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// FuzzUnpackAnchoredEvent: an Anchored event read from the chain (eth_getLogs: any
// node, any contract at that address) either fails or decodes to values that, packed
// again, decode to the same event. topics is cut into 32-byte topics; withID puts the
// event's own ID first, so that the data and the indexed logID are reached.
func FuzzUnpackAnchoredEvent(f *testing.F) {
	b := Binding()
	ev := b.GetABI().Events[IssuanceLogAnchoredEventName]
	pack := func(size uint64, root [32]byte, ts uint64) []byte {
		data, err := ev.Inputs.NonIndexed().Pack(size, root, ts)
		if err != nil {
			f.Fatal(err)
		}
		return data
	}
	logID := bytes.Repeat([]byte{1}, 32)
	good := pack(7, [32]byte{2}, 1_700_000_000)
	f.Add(logID, good, true)
	f.Add(logID, append(bytes.Clone(good), 0), true)
	f.Add(logID, good[:95], true)
	f.Add([]byte{}, good, true)
	f.Add(append(bytes.Clone(logID), logID...), good, true)
	f.Add(logID, good, false)
	f.Add(logID, pack(^uint64(0), [32]byte{}, ^uint64(0)), true)
	f.Fuzz(func(t *testing.T, topics, data []byte, withID bool) {
		l := &types.Log{Data: data}
		if withID {
			l.Topics = append(l.Topics, ev.ID)
		}
		for len(topics) >= 32 {
			l.Topics = append(l.Topics, common.BytesToHash(topics[:32]))
			topics = topics[32:]
		}
		got, err := b.UnpackAnchoredEvent(l)
		if err != nil {
			if got != nil {
				t.Fatal("an error and an event")
			}
			return
		}
		if !withID || len(l.Topics) < 2 || got.LogID != l.Topics[1] {
			t.Fatalf("decoded %+v from topics %v", got, l.Topics)
		}
		again, err := b.UnpackAnchoredEvent(&types.Log{Topics: l.Topics, Data: pack(got.Size, got.Root, got.Timestamp)})
		if err != nil {
			t.Fatalf("the event packed again does not decode: %v", err)
		}
		if again.LogID != got.LogID || again.Size != got.Size || again.Root != got.Root || again.Timestamp != got.Timestamp {
			t.Fatalf("the event changed on a round trip: %+v, %+v", got, again)
		}
	})
}

// FuzzUnpackLatest: the contract's answer to latest(logID) (eth_call) either fails or
// decodes to values that, packed again, decode to the same anchor.
func FuzzUnpackLatest(f *testing.F) {
	b := Binding()
	outs := b.GetABI().Methods["latest"].Outputs
	pack := func(o LatestOutput) []byte {
		data, err := outs.Pack(o.Size, o.Root, o.Timestamp)
		if err != nil {
			f.Fatal(err)
		}
		return data
	}
	good := pack(LatestOutput{Size: 9, Root: [32]byte{5}, Timestamp: 1_700_000_000})
	f.Add(good)
	f.Add(good[:64])
	f.Add(append(bytes.Clone(good), good...))
	f.Add([]byte{})
	hi := bytes.Clone(good)
	hi[0] = 1 // a size above 64 bits
	f.Add(hi)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := b.UnpackLatest(data)
		if err != nil {
			if got != (LatestOutput{}) {
				t.Fatalf("an error and an anchor %+v", got)
			}
			return
		}
		if len(data) < 96 {
			t.Fatalf("an anchor from %d bytes", len(data))
		}
		if binary.BigEndian.Uint64(data[24:32]) != got.Size || binary.BigEndian.Uint64(data[88:96]) != got.Timestamp || !bytes.Equal(data[32:64], got.Root[:]) {
			t.Fatalf("decoded %+v from %x", got, data[:96])
		}
		again, err := b.UnpackLatest(pack(got))
		if err != nil || again != got {
			t.Fatalf("the anchor changed on a round trip: %+v, %+v (%v)", got, again, err)
		}
	})
}

// revertError is an rpc.DataError as a JSON-RPC node returns it for a reverted call,
// so that Revert can be fed any revert data the node (or one impersonating it) sends.
type revertError struct{ data any }

func (e revertError) Error() string  { return "execution reverted" }
func (e revertError) ErrorData() any { return e.data }

// FuzzRevert: the revert data of a failed call or gas estimate, as an RPC node sends
// it, is either not one of the contract's errors (nil) or one of them that encodes to
// the same selector; never a panic, whatever its length.
func FuzzRevert(f *testing.F) {
	b := Binding()
	errs := b.GetABI().Errors
	sng, err := errs["SizeNotGrowing"].Inputs.Pack(uint64(5), uint64(3))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(hexutil.Encode(append(errs["SizeNotGrowing"].ID.Bytes()[:4], sng...)))
	f.Add(hexutil.Encode(errs["NotOwner"].ID.Bytes()[:4]))
	f.Add(hexutil.Encode(errs["NotAnchorer"].ID.Bytes()[:4]))
	f.Add(hexutil.Encode(errs["SizeNotGrowing"].ID.Bytes()[:4]))
	f.Add("0x")
	f.Add("0x0102")
	f.Add("nothex")
	f.Fuzz(func(t *testing.T, s string) {
		got := Revert(revertError{s})
		if got == nil {
			return
		}
		data, err := hexutil.Decode(s)
		if err != nil || len(data) < 4 {
			t.Fatalf("decoded %#v from %q", got, s)
		}
		var name string
		switch v := got.(type) {
		case *IssuanceLogNotOwner:
			name = "NotOwner"
		case *IssuanceLogNotAnchorer:
			name = "NotAnchorer"
		case *IssuanceLogSizeNotGrowing:
			name = "SizeNotGrowing"
			enc, err := errs[name].Inputs.Pack(v.Last, v.Size)
			if err != nil {
				t.Fatal(err)
			}
			again, ok := Revert(revertError{hexutil.Encode(append(errs[name].ID.Bytes()[:4], enc...))}).(*IssuanceLogSizeNotGrowing)
			if !ok || !reflect.DeepEqual(again, v) {
				t.Fatalf("the error changed on a round trip: %#v, %#v", v, again)
			}
		default:
			t.Fatalf("decoded a %T", got)
		}
		if !bytes.Equal(data[:4], errs[name].ID.Bytes()[:4]) {
			t.Fatalf("decoded %s from selector %x", name, data[:4])
		}
	})
}

// FuzzRetryAfter: a DTA's Retry-After header gives no wait or a wait that is not
// negative and, for a number of seconds, exactly that many.
func FuzzRetryAfter(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	for _, s := range []string{"", "0", "120", "4294967295", "4294967296", "-1", "1.5", " 3",
		"Wed, 21 Oct 2015 07:28:00 GMT", now.Add(time.Minute).UTC().Format(time.RFC1123), "Monday, 02-Jan-06 15:04:05 MST"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := retryAfter(v, now)
		if !ok {
			if d != 0 {
				t.Fatalf("no wait and %v", d)
			}
			return
		}
		if d < 0 {
			t.Fatalf("a negative wait %v from %q", d, v)
		}
		if v == "" {
			t.Fatal("a wait from an empty header")
		}
	})
}
