package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/ledger"
)

// The auditor's memory (audit --state). The checkpoints it verified: without them, a
// DTA that rolls back the part of its log it has not anchored yet is not caught. The
// trust bundle it audited with and the logs it audited: without them, a bundle of a
// greater serial that renames a DTA's log origin, or points it at another log under
// another key, would quietly end the audit of the old log, whatever it holds.

// auditStateVersion is the version of the --state file's format. Bundle and Logs were
// added to version 1 without a new version: files without them still load.
const auditStateVersion = 1

// auditState is the --state file.
type auditState struct {
	Version int    `json:"version"`
	Domain  string `json:"domain"`
	// Checkpoints are, per log origin, the last checkpoint that verified.
	Checkpoints map[string]ledger.SeenCheckpoint `json:"checkpoints"`
	// Bundle is the trust bundle of the last audit: the next must be the same or a
	// successor of it.
	Bundle *auditStateBundle `json:"bundle,omitempty"`
	// Logs are, per log origin, the logs audited: one the bundle no longer names is a
	// problem until --forget-log drops it.
	Logs map[string]auditStateLog `json:"logs,omitempty"`
}

// auditStateBundle is the trust bundle of the last audit.
type auditStateBundle struct {
	Fingerprint string `json:"fingerprint"`
	Serial      uint64 `json:"serial"`
	File        []byte `json:"file"` // its exact bytes (base64): the successor check needs its content
}

// auditStateLog is a log audited: its DTA and the DTA's signing key, in the last
// bundle that named it.
type auditStateLog struct {
	DTA        uint32 `json:"dta"`
	SigningKey string `json:"signing_key"`
}

// maxAuditState bounds the --state file read (a checkpoint and a log per DTA, and a
// bundle of at most bundle.MaxSize bytes).
const maxAuditState = 1 << 20

// readAuditState reads the --state file at path; a missing file is an empty state.
func readAuditState(path, domain string) (*auditState, error) {
	st := &auditState{Version: auditStateVersion, Domain: domain, Checkpoints: map[string]ledger.SeenCheckpoint{}, Logs: map[string]auditStateLog{}}
	raw, err := readLimited(path, maxAuditState)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	var got auditState
	if err := json.Unmarshal(raw, &got); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case got.Version != auditStateVersion:
		return nil, fmt.Errorf("%s: version %d, want %d", path, got.Version, auditStateVersion)
	case got.Domain != domain:
		return nil, fmt.Errorf("%s is the state of domain %q, not %q: use one state file per domain", path, got.Domain, domain)
	}
	for origin, cp := range got.Checkpoints {
		st.Checkpoints[origin] = cp
	}
	for origin, l := range got.Logs {
		st.Logs[origin] = l
	}
	st.Bundle = got.Bundle
	return st, nil
}

// checkBundle checks b, parsed from file, against the state, and records it and its
// logs there. b must be the bundle of the last audit (its bytes or its content) or a
// successor of it (bundle.ParseSuccessor: signed by its registrar, a greater serial,
// the same master key and anchoring); anything else is an error. Every log audited
// before (by the state's logs and checkpoints, which files without logs have) that b
// no longer names is a problem, returned, unless forget names it: the state then
// drops it. A log b names under another signing key needs no problem of its own: its
// checkpoint must still extend the one seen, and its anchors are the old log's.
func (st *auditState) checkBundle(b *bundle.Bundle, file []byte, forget []string) ([]string, error) {
	fp := bundle.Fingerprint(file)
	if prev := st.Bundle; prev != nil && prev.Fingerprint != fp {
		old, err := bundle.Parse(prev.File)
		if err != nil {
			return nil, fmt.Errorf("the trust bundle it records: %w", err)
		}
		if !reflect.DeepEqual(old, b) { // else the same bundle, encoded otherwise
			if _, err := bundle.ParseSuccessor(old, file); err != nil {
				return nil, fmt.Errorf("the trust bundle (serial %d, fingerprint %s) is neither the one audited last (serial %d, fingerprint %s) nor a successor of it: %w (a domain bootstrapped anew needs a new state file)",
					b.Serial, fp, prev.Serial, prev.Fingerprint, err)
			}
		}
	}
	named := map[string]bool{}
	for _, d := range b.DTAs {
		named[d.LogOrigin] = true
	}
	audited := map[string]bool{}
	for origin := range st.Logs {
		audited[origin] = true
	}
	for origin := range st.Checkpoints {
		audited[origin] = true
	}
	for _, origin := range forget {
		switch {
		case named[origin]:
			return nil, fmt.Errorf("--forget-log %s: the trust bundle still names that log", origin)
		case !audited[origin]:
			return nil, fmt.Errorf("--forget-log %s: the state has no such log", origin)
		}
		delete(st.Logs, origin)
		delete(st.Checkpoints, origin)
		delete(audited, origin)
	}
	var gone []string
	for _, origin := range slices.Sorted(maps.Keys(audited)) {
		if named[origin] {
			continue
		}
		who := ""
		if l, ok := st.Logs[origin]; ok {
			who = fmt.Sprintf(" (DTA %d, key %.16s…)", l.DTA, l.SigningKey)
		}
		gone = append(gone, fmt.Sprintf("log %s%s, audited before, is not in the trust bundle (serial %d): it is no longer checked, whatever it holds; "+
			"if its DTA retired it, make sure of that with the domain's operator, then pass --forget-log %s", origin, who, b.Serial, origin))
	}
	st.Bundle = &auditStateBundle{Fingerprint: fp, Serial: b.Serial, File: file}
	for _, d := range b.DTAs {
		st.Logs[d.LogOrigin] = auditStateLog{DTA: d.Index, SigningKey: d.SigningKey}
	}
	return gone, nil
}

// update keeps, for every DTA whose audit found no problem, its checkpoint and since
// when its log has run past its anchors (DTAReport.Seen); a DTA that failed keeps
// what was seen before, so the next audit checks against it.
func (st *auditState) update(r *ledger.Report) {
	for _, d := range r.DTAs {
		if len(d.Problems) == 0 && d.CheckpointSize > 0 {
			st.Checkpoints[d.Origin] = d.Seen
		}
	}
}

// write replaces the --state file at path, atomically.
func (st *auditState) write(path string) error {
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(raw, '\n'), 0o644)
}
