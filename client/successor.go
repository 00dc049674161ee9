package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/pairing"
)

// Files of a client directory for successor bundles.
const (
	// BundlePreviousFile is the journal of an adoption in progress: the bundle pinned
	// before, kept until bundle.json, bundle.sha256 and token.json all name the
	// successor. Open finishes an adoption that a crash interrupted.
	BundlePreviousFile = "bundle.prev.json"
	// BundleCheckFile holds when the auth server's bundle was last checked (RFC 3339).
	BundleCheckFile = "bundle.checked"
)

// BundleCheckInterval is how often, at most, RefreshPermits and RenewPermits fetch the
// auth server's trust bundle to look for a successor of the pinned one. A DTA share
// whose proof fails against the pinned bundle makes the client look at once.
const BundleCheckInterval = 24 * time.Hour

// ErrBundleNotSuccessor: the auth server serves another trust bundle than the pinned
// one, and it is not a successor the client may adopt (bundle.CheckSuccessor: signed
// by the pinned bundle's registrar key, same domain, registrar, protocol, permit
// period and master public key, a greater serial). The error says which check failed.
// Nothing was changed; tell the domain's operator.
var ErrBundleNotSuccessor = errors.New("client: the auth server's trust bundle is not a successor of the pinned one; nothing was changed; tell the domain's operator")

// errBundleFetch marks a failure to fetch the server's bundle (as opposed to a refusal).
var errBundleFetch = errors.New("client: fetching the auth server's trust bundle")

// pinned returns the pinned bundle and its fingerprint.
func (c *Client) pinned() (*bundle.Bundle, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bundle, c.fingerprint
}

// pinnedBundle returns the pinned bundle.
func (c *Client) pinnedBundle() *bundle.Bundle {
	b, _ := c.pinned()
	return b
}

// Fingerprint returns the SHA-256 fingerprint of the pinned trust bundle (it changes
// when the client adopts a successor).
func (c *Client) Fingerprint() string {
	_, fp := c.pinned()
	return fp
}

// dleqFailed reports whether err holds a DTA share whose DLEQ proof failed.
func dleqFailed(err error) bool {
	var se *pairing.ShareError
	return err != nil && errors.As(err, &se)
}

// collectAdopting is collect with the pinned bundle; when a DTA's share fails its
// DLEQ proof against the pinned commitment (the DTAs may have reshared), it fetches
// the auth server's bundle, adopts it if it is a successor, and collects once more
// with it. It returns the shares and the bundle they were checked against (the
// pinned one may be a successor by then: c.pinned).
func (c *Client) collectAdopting(ctx context.Context, serverURL string, id pairing.IDHash, jobs []job) (*collected, *bundle.Bundle, error) {
	b := c.pinnedBundle()
	got, err := c.collect(ctx, b, id, jobs)
	switch {
	case err == nil && !got.dleqFault:
		return got, b, nil
	case err == nil:
		// t valid shares sufficed; a successor is adopted for the next time.
		if _, aerr := c.adoptServerBundle(ctx, serverURL); aerr != nil && c.o.dtaFaults != nil {
			c.o.dtaFaults(aerr)
		}
		return got, b, nil
	case !dleqFailed(err):
		return nil, nil, err
	}
	adopted, aerr := c.adoptServerBundle(ctx, serverURL)
	if aerr != nil {
		return nil, nil, errors.Join(err, aerr)
	}
	if !adopted {
		return nil, nil, err
	}
	b = c.pinnedBundle()
	got, err = c.collect(ctx, b, id, jobs)
	if err != nil {
		return nil, nil, err
	}
	return got, b, nil
}

// dailyBundleCheck looks for a successor of the pinned bundle at the auth server, at
// most once per BundleCheckInterval. A server that cannot be asked is no error (the
// operation goes on with the pinned bundle, and the next one asks again); a bundle
// that is refused is (ErrBundleNotSuccessor).
func (c *Client) dailyBundleCheck(ctx context.Context, serverURL string) error {
	now := c.o.now()
	if raw, err := c.st.Load(BundleCheckFile); err == nil {
		last, err := time.Parse(time.RFC3339, strings.TrimSpace(string(raw)))
		if err == nil && !now.Before(last) && now.Sub(last) < BundleCheckInterval {
			return nil
		}
	}
	_, err := c.adoptServerBundle(ctx, serverURL)
	if errors.Is(err, errBundleFetch) {
		return nil
	}
	if err != nil {
		return err
	}
	// Best effort: without it, the next operation asks again.
	_ = c.st.Store(BundleCheckFile, []byte(now.UTC().Format(time.RFC3339)+"\n"))
	return nil
}

// adoptServerBundle fetches the auth server's bundle (GET /v1/bundle) and adopts it
// when it is a successor of the pinned one. It returns whether it adopted one; the
// same bundle as the pinned one is no error.
func (c *Client) adoptServerBundle(ctx context.Context, serverURL string) (bool, error) {
	u, err := c.o.serverURL(serverURL, "/v1/bundle")
	if err != nil {
		return false, err
	}
	file, err := readBundleSource(ctx, c.o.serverHTTP, u)
	if err != nil {
		return false, fmt.Errorf("%w: %w", errBundleFetch, err)
	}
	return c.adopt(file)
}

// adopt replaces the pinned bundle with file when it is a successor of it: its
// signature verifies with the pinned registrar key and bundle.CheckSuccessor passes
// (ParseSuccessor), and its DTA URLs are allowed. Only then are bundle.json,
// bundle.sha256 and the token file's bundle_fingerprint replaced (swapBundle). The
// server that served file is not trusted for any of this.
func (c *Client) adopt(file []byte) (bool, error) {
	old, oldFP := c.pinned()
	fp := bundle.Fingerprint(file)
	if fp == oldFP {
		return false, nil
	}
	next, err := bundle.ParseSuccessor(old, file)
	if err != nil && bundle.IsPredecessor(old, file) {
		return false, nil // a replica that has not loaded the pinned bundle yet: keep it
	}
	if err != nil {
		return false, fmt.Errorf("%w (bundle %.16s…): %w", ErrBundleNotSuccessor, fp, err)
	}
	if err := next.CheckDTAURLs(c.o.insecureDTA); err != nil {
		return false, fmt.Errorf("%w (bundle %.16s…): %w", ErrBundleNotSuccessor, fp, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fingerprint != oldFP { // adopted meanwhile
		return c.fingerprint == fp, nil
	}
	var st *tokenState
	if c.state != nil {
		cp := *c.state
		cp.BundleFingerprint = fp
		st = &cp
	}
	if err := swapBundle(c.st, oldFP, file, fp, st); err != nil {
		return false, err
	}
	c.bundle, c.fingerprint = next, fp
	if st != nil {
		c.state = st
	}
	return true, nil
}

// swapBundle replaces the pinned bundle file (fingerprint oldFP) with file: the old
// file goes to BundlePreviousFile first, then bundle.json, bundle.sha256 and the token
// file (st; if nil, the one on disk if it names oldFP) are written, each atomically,
// and the journal is removed. A crash
// in between leaves the journal, and recoverAdoption finishes the adoption.
func swapBundle(dir Storage, oldFP string, file []byte, fp string, st *tokenState) error {
	prev, err := dir.Load(BundleFile)
	if err != nil {
		return err
	}
	if bundle.Fingerprint(prev) != oldFP {
		return fmt.Errorf("%w (%s was changed while the client ran)", ErrBundleFingerprint, BundleFile)
	}
	if err := dir.Store(BundlePreviousFile, prev); err != nil {
		return err
	}
	if err := dir.Store(BundleFile, file); err != nil {
		return err
	}
	if err := dir.Store(FingerprintFile, []byte(fp+"\n")); err != nil {
		return err
	}
	if st == nil {
		// No enrolment in memory; one on disk (written since Open) moves along too.
		disk, err := loadToken(dir)
		if err != nil {
			return err
		}
		if disk != nil && disk.BundleFingerprint == oldFP {
			disk.BundleFingerprint = fp
			st = disk
		}
	}
	if st != nil {
		if err := saveToken(dir, st); err != nil {
			return err
		}
	}
	return removeFiles(dir, BundlePreviousFile)
}

// recoverAdoption finishes an adoption that a crash interrupted (BundlePreviousFile
// exists): if bundle.json still is the previous bundle, nothing was adopted; otherwise
// bundle.json must be a successor of the previous bundle (checked as adopt does),
// bundle.sha256 must name one of the two, and both it and the token file are moved
// to the successor. Anything else is an error that changes nothing.
func recoverAdoption(dir Storage) error {
	prevFile, err := loadFile(dir, BundlePreviousFile)
	if err != nil || prevFile == nil {
		return err
	}
	damaged := func(why string) error {
		return fmt.Errorf("client: %s: an interrupted adoption of a successor bundle cannot be finished: %s; bootstrap again", where(dir), why)
	}
	cur, err := dir.Load(BundleFile)
	if err != nil {
		return err
	}
	fpb, err := dir.Load(FingerprintFile)
	if err != nil {
		return err
	}
	pinnedFP := normalizeFingerprint(string(fpb))
	prevFP, curFP := bundle.Fingerprint(prevFile), bundle.Fingerprint(cur)
	if curFP == prevFP {
		if pinnedFP != prevFP {
			return damaged("bundle.sha256 names another bundle")
		}
		return removeFiles(dir, BundlePreviousFile)
	}
	if pinnedFP != prevFP && pinnedFP != curFP {
		return damaged("bundle.sha256 names neither the previous bundle nor its successor")
	}
	prev, err := bundle.Parse(prevFile)
	if err != nil {
		return damaged(err.Error())
	}
	if _, err := bundle.ParseSuccessor(prev, cur); err != nil {
		return damaged(err.Error())
	}
	if pinnedFP != curFP {
		if err := dir.Store(FingerprintFile, []byte(curFP+"\n")); err != nil {
			return err
		}
	}
	st, err := loadToken(dir)
	if err != nil {
		return err
	}
	if st != nil && st.BundleFingerprint == prevFP {
		st.BundleFingerprint = curFP
		if err := saveToken(dir, st); err != nil {
			return err
		}
	}
	return removeFiles(dir, BundlePreviousFile)
}
