package translog

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// FuzzParseCheckpoint: a checkpoint fetched from a DTA's log either fails or is a
// checkpoint of the origin asked for, whose size and root, signed again, parse to the
// same checkpoint. With sign set, the fuzzed bytes are the note's text and are signed
// with the DTA's key, so that the parsing of the checkpoint body behind a valid
// signature is reached, not only the signature check.
func FuzzParseCheckpoint(f *testing.F) {
	const origin = "fuzz.example.com/dta/1"
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	pub := key.Public().(ed25519.PublicKey)
	signer, err := NoteSigner(origin, key)
	if err != nil {
		f.Fatal(err)
	}
	signText := func(text []byte) ([]byte, error) { return note.Sign(&note.Note{Text: string(text)}, signer) }
	body := log.Checkpoint{Origin: origin, Size: 5, Hash: bytes.Repeat([]byte{9}, 32)}.Marshal()
	signed, err := signText(body)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed, false)
	f.Add(body, true)
	f.Add([]byte(origin+"\n18446744073709551615\nAAAA\n"), true)
	f.Add([]byte(origin+"\n1\n"+string(bytes.Repeat([]byte{'A'}, 44))+"\nextension line\n"), true)
	f.Add([]byte("other.origin\n5\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n"), true)
	f.Add([]byte(origin+"\n-1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n"), true)
	f.Add(append(bytes.Clone(signed), "\n— other AAAA\n"...), false)
	f.Fuzz(func(t *testing.T, raw []byte, sign bool) {
		if sign {
			var err error
			if raw, err = signText(raw); err != nil {
				return // not a note's text (not UTF-8, no final newline, …)
			}
		}
		cp, err := ParseCheckpoint(raw, origin, pub)
		if err != nil {
			if cp != nil {
				t.Fatal("an error and a checkpoint")
			}
			return
		}
		if cp.Origin != origin {
			t.Fatalf("a checkpoint of origin %q accepted for %q", cp.Origin, origin)
		}
		again, err := signText(log.Checkpoint{Origin: cp.Origin, Size: cp.Size, Hash: cp.Hash}.Marshal())
		if err != nil {
			t.Fatalf("the checkpoint read does not sign again: %v", err)
		}
		cp2, err := ParseCheckpoint(again, origin, pub)
		if err != nil {
			t.Fatalf("the checkpoint read, signed again, does not parse: %v", err)
		}
		if cp2.Origin != cp.Origin || cp2.Size != cp.Size || !bytes.Equal(cp2.Hash, cp.Hash) {
			t.Fatalf("the checkpoint changed on a round trip: %+v, %+v", cp, cp2)
		}
	})
}
