package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/polyroot/polyroot/ledger"
)

// The auditor's memory of the checkpoints it verified (audit --state): without it, a
// DTA that rolls back the part of its log it has not anchored yet is not caught.

// auditStateVersion is the version of the --state file's format.
const auditStateVersion = 1

// auditState is the --state file: per log origin, the last checkpoint that verified.
type auditState struct {
	Version     int                              `json:"version"`
	Domain      string                           `json:"domain"`
	Checkpoints map[string]ledger.SeenCheckpoint `json:"checkpoints"`
}

// maxAuditState bounds the --state file read (a checkpoint per DTA).
const maxAuditState = 1 << 20

// readAuditState reads the --state file at path; a missing file is an empty state.
func readAuditState(path, domain string) (*auditState, error) {
	st := &auditState{Version: auditStateVersion, Domain: domain, Checkpoints: map[string]ledger.SeenCheckpoint{}}
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
	return st, nil
}

// update keeps, for every DTA whose audit found no problem, its checkpoint; a DTA
// that failed keeps the checkpoint seen before, so the next audit checks against it.
func (st *auditState) update(r *ledger.Report) {
	for _, d := range r.DTAs {
		if len(d.Problems) == 0 && d.CheckpointSize > 0 {
			st.Checkpoints[d.Origin] = ledger.SeenCheckpoint{Size: d.CheckpointSize, Root: d.CheckpointRoot}
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
