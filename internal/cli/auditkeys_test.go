package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/polyroot/polyroot/ledger"
)

// TestAuditKeyEntriesOutput: the table lists each DTA's key entries (serial and
// transcript hash) after the logs, and the JSON has them under each DTA's "keys" ([]
// when none).
func TestAuditKeyEntriesOutput(t *testing.T) {
	tr := strings.Repeat("ab", 32)
	at := time.Unix(1_765_000_000, 0).UTC()
	r := &ledger.Report{Domain: "d.example", DTAs: []ledger.DTAReport{
		{Index: 1, Origin: "o1", Status: ledger.AuditOK, Keys: []ledger.KeyEntry{{Index: 0, Serial: 2, TranscriptSHA256: tr, Commitment: "c1", Time: at}}},
		{Index: 2, Origin: "o2", Status: ledger.AuditOK},
	}}
	var out bytes.Buffer
	printAuditReport(&out, r, common.Address{}, nil)
	if !strings.Contains(out.String(), "Key entries (the sharings each DTA served under): 1") ||
		!strings.Contains(out.String(), "1    0      2       "+tr+"  2025-12-06T05:46:40Z") {
		t.Fatalf("table:\n%s", out.String())
	}
	raw, err := json.Marshal(auditReportJSON(r, common.Address{}, "", nil))
	if err != nil {
		t.Fatal(err)
	}
	var j auditJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		t.Fatal(err)
	}
	if k := j.DTAs[0].Keys; len(k) != 1 || k[0].Serial != 2 || k[0].TranscriptSHA256 != tr || k[0].Commitment != "c1" || !k[0].Time.Equal(at) {
		t.Fatalf("keys %+v", k)
	}
	if !strings.Contains(string(raw), `"keys":[]`) {
		t.Fatalf("no empty keys for DTA 2: %s", raw)
	}
}

// TestAuditServerSharesOutput: the table always says how many server-key shares the
// logs record and lists them; the JSON has them under each DTA's "server_shares" ([]
// when none).
func TestAuditServerSharesOutput(t *testing.T) {
	tk := strings.Repeat("cd", 32)
	at := time.Unix(1_765_000_000, 0).UTC()
	r := &ledger.Report{Domain: "d.example", DTAs: []ledger.DTAReport{
		{Index: 1, Origin: "o1", Status: ledger.AuditOK, ServerShares: []ledger.ServerEntry{{Index: 3, Time: at, TicketSHA256: tk, SealedSHA256: "ef"}}},
		{Index: 2, Origin: "o2", Status: ledger.AuditOK},
	}}
	var out bytes.Buffer
	printAuditReport(&out, r, common.Address{}, nil)
	if !strings.Contains(out.String(), "Server key shares issued: 1 (") || !strings.Contains(out.String(), "1    3      2025-12-06T05:46:40Z  "+tk) {
		t.Fatalf("table:\n%s", out.String())
	}
	out.Reset()
	printAuditReport(&out, &ledger.Report{Domain: "d.example", DTAs: []ledger.DTAReport{{Index: 1, Status: ledger.AuditOK}}}, common.Address{}, nil)
	if !strings.Contains(out.String(), "Server key shares issued: 0 (") {
		t.Fatalf("table without server shares:\n%s", out.String())
	}
	raw, _ := json.Marshal(auditReportJSON(r, common.Address{}, "", nil))
	var j auditJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		t.Fatal(err)
	}
	if s := j.DTAs[0].ServerShares; len(s) != 1 || s[0].Index != 3 || s[0].TicketSHA256 != tk || !s[0].Time.Equal(at) {
		t.Fatalf("server shares %+v", s)
	}
	if !strings.Contains(string(raw), `"server_shares":[]`) {
		t.Fatalf("no empty server_shares for DTA 2: %s", raw)
	}
}
