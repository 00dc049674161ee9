package dta

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/polyroot/polyroot/internal/wire"
)

// Key entries.
//
// A threshold bundle names the transcript of the key generation or resharing that made
// the DTAs' shares (bundle.Bundle.TranscriptSHA256). Before a DTA serves under such a
// bundle, at New or at Reload, it appends a key entry (wire.KindKey) to its log naming
// the bundle's serial, the transcript's hash and its commitment C_i, so that its log
// records every sharing it served under and an auditor can compare them with the
// published transcripts. The entry goes through the committer like an issuance: a
// record, pending then complete, under a store key derived from the three values
// (keyNonce), so a restart or a reload under the same sharing finds the record and
// appends nothing, and a crash between the record and the append is finished by
// recovery (recoverPending) at the next start. Ticket nonces are 32 hex digits: the
// "key/" prefix keeps the two apart. The record has no expiry: prune keeps it.

// keyNonce is the store key of the key entry's record for a sharing.
func keyNonce(serial uint64, transcript, commitment string) string {
	b := binary.BigEndian.AppendUint64([]byte("polyroot/v1 key entry\n"), serial)
	b = append(b, transcript+"\n"+commitment...)
	h := sha256.Sum256(b)
	return "key/" + hex.EncodeToString(h[:])
}

// errKeyPending reports a key entry whose append failed earlier in this process.
var errKeyPending = errors.New("dta: the key entry of this bundle is recorded but not yet in the log; the DTA appends it by itself once the log takes entries again: reload again later")

// logKey appends the key entry of k's bundle and waits until it is durable, unless the
// bundle names no transcript or the entry was appended before.
func (s *Service) logKey(ctx context.Context, k *keys) error {
	b := k.bundle
	if b.TranscriptSHA256 == "" {
		return nil
	}
	commitment := hex.EncodeToString(k.commitment.Bytes()) // rec.Commitment, as loadKeys checked
	nonce := keyNonce(b.Serial, b.TranscriptSHA256, commitment)
	defer s.locks.lock(nonce)()
	switch rec, _, err := s.lookup(nonce, ""); {
	case err == nil && rec.pending():
		return errKeyPending
	case err == nil:
		return nil // logged before
	case !errors.Is(err, errNoRecord):
		return fmt.Errorf("dta: key entry: %w", err)
	}
	e := wire.Entry{Version: wire.EntryVersion, DTA: s.cfg.Index, Domain: b.Domain, Kind: wire.KindKey,
		Serial: b.Serial, TranscriptSHA256: b.TranscriptSHA256, Commitment: commitment, Time: s.cfg.Now().Unix()}
	leaf, err := e.Marshal()
	if err != nil {
		return fmt.Errorf("dta: key entry: %w", err)
	}
	rec := &record{Kind: wire.KindKey, Entries: [][]byte{leaf}, Slots: []uint64{0}, SizeHint: s.logSize.Load()}
	var appendErr *errAppend
	switch err := s.commits.submit(nonce, rec, "", ""); {
	case errors.As(err, &appendErr):
		return fmt.Errorf("dta: key entry: %w (the DTA appends it by itself once the log takes entries again)", appendErr)
	case err != nil:
		return fmt.Errorf("dta: key entry: %w", err)
	}
	s.cfg.Logger.InfoContext(ctx, "logged the key entry of the trust bundle", "serial", b.Serial,
		"transcript_sha256", b.TranscriptSHA256, "log_index", rec.Indices[0])
	return nil
}
