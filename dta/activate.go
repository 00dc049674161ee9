package dta

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/pairing"
)

// readShare returns the share stored as name, nil if there is none.
func readShare(ctx context.Context, ks keystore.Keystore, name string) (*pairing.Scalar, error) {
	raw, err := ks.Get(ctx, name)
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dta: %s: %w", name, err)
	}
	s, err := pairing.DecodeScalar(raw)
	clear(raw)
	if err != nil {
		return nil, fmt.Errorf("dta: the %s in the keystore is malformed", name)
	}
	return s, nil
}

func shareMatches(s *pairing.Scalar, rec *bundle.DTA) bool {
	return s != nil && hex.EncodeToString(pairing.G1Generator().Mul(s).PublicForm().Bytes()) == rec.Commitment
}

func zeroShare(s *pairing.Scalar) {
	if s != nil {
		s.Set(new(pairing.Scalar))
	}
}

// ActivateShare returns the master share in ks whose commitment is rec's (the DTA's
// record in the bundle being loaded): the active share (SecretMasterShare) or the
// pending one a resharing stored (SecretMasterShareNext). It picks whichever matches,
// so a bundle decides which sharing is live:
//
//   - The active share matches: it is returned. A pending share equal to it (a
//     promotion interrupted after its Put) is deleted; another pending share is kept:
//     its resharing may still be adopted.
//   - The pending share matches: it is promoted. The old share is deleted with every
//     version the backend keeps (keystore Delete), the pending one is Put as the
//     active share, and the pending one is deleted. A crash between the steps leaves
//     the new share in SecretMasterShareNext, SecretMasterShare or both, and the next
//     call with the same bundle finishes the promotion; the old share, once deleted,
//     is gone (the bundle that names the new share is the live one).
//   - Neither matches: an error; nothing is changed.
//
// logger (nil: none) gets a line when a share is promoted, never a share.
func ActivateShare(ctx context.Context, ks keystore.Keystore, rec *bundle.DTA, logger *slog.Logger) (*pairing.Scalar, error) {
	share, activate, err := pickShare(ctx, ks, rec, logger)
	if err != nil {
		return nil, err
	}
	if err := activate(ctx); err != nil {
		zeroShare(share)
		return nil, err
	}
	return share, nil
}

// pickShare is ActivateShare in two steps: it returns the share that matches rec,
// changing nothing, and activate, which makes the keystore's changes ActivateShare
// makes for it (promotion, or the deletion of a promoted pending copy; nothing to do
// otherwise). The DTA service runs activate only once it serves under the bundle (its
// key entry logged): a bundle it fails to load must leave the old share in place.
// activate reads share, which must not be zeroed before it has run.
func pickShare(ctx context.Context, ks keystore.Keystore, rec *bundle.DTA, logger *slog.Logger) (share *pairing.Scalar, activate func(context.Context) error, err error) {
	active, err := readShare(ctx, ks, SecretMasterShare)
	if err != nil {
		return nil, nil, err
	}
	pending, err := readShare(ctx, ks, SecretMasterShareNext)
	if err != nil {
		zeroShare(active)
		return nil, nil, err
	}
	defer zeroShare(pending)
	switch {
	case shareMatches(active, rec):
		if pending == nil || !pending.Equal(active) {
			return active, func(context.Context) error { return nil }, nil
		}
		return active, func(ctx context.Context) error {
			if err := ks.Delete(ctx, SecretMasterShareNext); err != nil {
				return fmt.Errorf("dta: erasing the promoted pending master share: %w", err)
			}
			return nil
		}, nil
	case shareMatches(pending, rec):
		hadActive := active != nil
		zeroShare(active)
		share = new(pairing.Scalar).Set(pending)
		return share, func(ctx context.Context) error {
			if hadActive {
				if err := ks.Delete(ctx, SecretMasterShare); err != nil {
					return fmt.Errorf("dta: activating the reshared master share: erasing the old one: %w", err)
				}
			}
			if err := ks.Put(ctx, SecretMasterShare, share.Bytes()); err != nil {
				return fmt.Errorf("dta: activating the reshared master share: %w (it stays pending; reload again)", err)
			}
			if err := ks.Delete(ctx, SecretMasterShareNext); err != nil {
				return fmt.Errorf("dta: activating the reshared master share: erasing the pending copy: %w (reload again)", err)
			}
			if logger != nil {
				logger.Info("master share from the resharing activated; the old share is erased", "commitment", rec.Commitment)
			}
			return nil
		}, nil
	case active == nil && pending == nil:
		return nil, nil, fmt.Errorf("dta: master share: %w", keystore.ErrNotFound)
	default:
		zeroShare(active)
		what := "the master share in the keystore does not"
		if pending != nil {
			what = "neither the master share in the keystore nor the pending one of a resharing"
		}
		return nil, nil, fmt.Errorf("dta: %s match commitment C_%d in the trust bundle", what, rec.Index)
	}
}
