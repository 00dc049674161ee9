package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/internal/wire"
)

// TestProvisionChecksLogReceipt: a server-key share is taken only with the DTA's log
// entry for it and the DTA's signed promise of that entry, and the report gives each
// DTA's log index (what the audit lists among the log's server shares).
func TestProvisionChecksLogReceipt(t *testing.T) {
	e := newEnv(t, 0)
	_, rep, err := ProvisionReport(context.Background(), e.d.Bundle, e.d.Registrar, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Logged) != len(e.d.Bundle.DTAs) {
		t.Fatalf("logged %v, want an index for every DTA", rep.Logged)
	}

	for _, tc := range []struct {
		name   string
		change func(sh *wire.DTAShare)
		want   string
	}{
		{"fail/no-promise", func(sh *wire.DTAShare) { sh.Promise = nil }, "no valid promise"},
		{"fail/promise-of-another-index", func(sh *wire.DTAShare) { sh.Promise.Index++ }, "no valid promise"},
		{"fail/promise-of-another-log", func(sh *wire.DTAShare) { sh.Promise.Origin += "x" }, "no valid promise"},
		{"fail/no-entry", func(sh *wire.DTAShare) { sh.Entry = nil }, "the log entry does not describe this issuance"},
		{"fail/entry-of-another-issuance", func(sh *wire.DTAShare) {
			e, err := wire.ParseEntry(sh.Entry)
			if err != nil {
				panic(err)
			}
			e.TicketSHA256 = strings.Repeat("0", 64)
			if sh.Entry, err = e.Marshal(); err != nil {
				panic(err)
			}
		}, "the log entry does not describe this issuance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := *e.d.Bundle
			b.DTAs = slices.Clone(b.DTAs)
			b.DTAs[1].URL = tamperingProxy(t, b.DTAs[1].URL, tc.change)
			_, err := Provision(context.Background(), &b, e.d.Registrar, nil)
			var de *DTAError
			if !errors.As(err, &de) || len(de.Failed) != 1 || de.Failed[2] == nil || !strings.Contains(de.Failed[2].Error(), tc.want) {
				t.Fatalf("got %v, want DTA 2 refused with %q", err, tc.want)
			}
		})
	}
}

// tamperingProxy forwards to a DTA at target and changes the share of its answers.
func tamperingProxy(t *testing.T, target string, change func(*wire.DTAShare)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.Path, r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var answer wire.DTAResponse
		if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &answer) == nil && len(answer.Shares) == 1 {
			change(&answer.Shares[0])
			body, _ = json.Marshal(&answer)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
