package server

import (
	"bytes"
	"fmt"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/pairing"
)

// trustBundle is a trust bundle, its file and the file's fingerprint.
type trustBundle struct {
	b           *bundle.Bundle
	file        []byte
	fingerprint string
}

// trustBundle returns the trust bundle in use.
func (s *Server) trustBundle() *trustBundle { return s.trust.Load() }

// BundleFingerprint returns the fingerprint of the trust bundle in use (it changes when
// ReloadBundle swaps in a successor).
func (s *Server) BundleFingerprint() string { return s.trustBundle().fingerprint }

// ReloadBundle replaces the trust bundle with file, a successor of the one in use
// (after the DTAs reshared the master key): its signature must verify with the
// current registrar key and bundle.CheckSuccessor must pass (bundle.ParseSuccessor), and
// its master public key s·P1 must match the server key sQ (e(s·P1, Q) = e(P1, sQ)).
// Then GET /v1/bundle serves file, enrolment packages name its fingerprint, and the
// DTA probe and revocation notices use its DTAs. The same file changes nothing; on any
// error the bundle in use stays.
func (s *Server) ReloadBundle(file []byte) error {
	cur := s.trustBundle()
	if bytes.Equal(file, cur.file) {
		return nil
	}
	next, err := bundle.ParseSuccessor(cur.b, file)
	if err != nil {
		return fmt.Errorf("server: the new trust bundle: %w", err)
	}
	pk, err := next.PublicKey()
	if err != nil {
		return fmt.Errorf("server: the new trust bundle: %w", err)
	}
	if err := pairing.VerifyServerShare(pk, s.cfg.ServerKey); err != nil {
		return fmt.Errorf("server: the new trust bundle's master public key does not match the server key sQ: %w", err)
	}
	t := &trustBundle{b: next, file: bytes.Clone(file), fingerprint: bundle.Fingerprint(file)}
	if err := s.buildLoginPages(next); err != nil {
		return err
	}
	s.trust.Store(t)
	s.probe.setBundle(next)
	s.cfg.Logger.Info("trust bundle replaced by its successor", "serial", next.Serial, "bundle_fingerprint", t.fingerprint,
		"previous_fingerprint", cur.fingerprint)
	return nil
}
