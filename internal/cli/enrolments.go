package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/internal/wire"
)

// The registrar's commands on enrolments that exist: list, revoke, unblock.

func serverEnrolmentsCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "enrolments",
		Aliases:   []string{"enrollments"},
		Usage:     "list enrolments: of one ID (every device it enrolled), or of the whole domain",
		ArgsUsage: "[ID]",
		UsageText: "polyroot server enrolments --server URL [--json] [ID]\n\n" +
			"Examples:\n" +
			"   export " + envAdminToken + "='…'\n" +
			"   polyroot server enrolments --server https://auth.example.com alice@example.com\n" +
			"   polyroot server enrolments --server https://auth.example.com --json | jq '.[] | select(.state == \"blocked\")'",
		Description: "Prints one line per enrolment: its ID, idhash, state, kind (pin or device),\n" +
			"creation time, expiry (temporary identities) and failed logins (in a row / in the\n" +
			"current 24 h window). States: pending (code not redeemed yet), active, blocked (too\n" +
			"many failures: server unblock lifts it), revoked, expired. Without ID, lists the\n" +
			"whole domain, page by page. --json prints a JSON array of the same records.\n\n" +
			"The admin token comes from the environment variable " + envAdminToken + " (or a file named by " + envAdminToken + "_FILE) only.",
		Flags: append(adminFlags(), &ucli.BoolFlag{Name: "json", Usage: "print a JSON array"}),
		Action: func(ctx context.Context, c *ucli.Command) error {
			if c.Args().Len() > 1 {
				return fmt.Errorf("server enrolments: give at most one ID (got %d arguments)", c.Args().Len())
			}
			all, err := fetchEnrolments(ctx, c, c.Args().First())
			if err != nil {
				return fmt.Errorf("server enrolments: %w", err)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.Root().Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(all)
			}
			return printEnrolments(c.Root().Writer, all)
		},
	}
}

// fetchEnrolments gets every enrolment of id, or of the domain if id is empty.
func fetchEnrolments(ctx context.Context, c *ucli.Command, id string) ([]wire.EnrolmentInfo, error) {
	all := []wire.EnrolmentInfo{}
	q := url.Values{}
	if id != "" {
		q.Set("id", id)
	}
	for {
		var page wire.EnrolmentList
		if err := adminRequest(ctx, c, http.MethodGet, "/v1/admin/enrolments", q, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Enrolments...)
		if page.Next == "" || id != "" {
			return all, nil
		}
		q.Set("after", page.Next)
	}
}

func printEnrolments(w io.Writer, all []wire.EnrolmentInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tIDHASH\tSTATE\tKIND\tCREATED\tEXPIRES\tFAILURES")
	for _, e := range all {
		kind, expires := "pin", "-"
		if e.Device {
			kind = "device"
		}
		if e.NotAfter != nil {
			expires = e.NotAfter.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d / %d today\n", printable(e.ID), e.IDHash, e.State, kind,
			e.Created.UTC().Format(time.RFC3339), expires, e.Failures, e.DayFailures)
	}
	return tw.Flush()
}

// printable quotes an ID that holds spaces or control characters, so that one record
// stays one line and one column.
func printable(id string) string {
	if strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Sprintf("%q", id)
	}
	return id
}

func serverRevokeCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "revoke",
		Usage:     "revoke an identity (every enrolment of an ID, or one by --idhash): at once on the server, and at every DTA",
		ArgsUsage: "ID",
		UsageText: "polyroot server revoke --server URL (ID | --idhash H)\n\n" +
			"Examples:\n" +
			"   export " + envAdminToken + "='…'\n" +
			"   polyroot server revoke --server https://auth.example.com alice@example.com\n" +
			"   polyroot server revoke --server https://auth.example.com --idhash 3f1c…   # one device only",
		Description: "The server refuses the identity's logins at once and sends a signed revocation\n" +
			"notice to every DTA, which then issue it no permits (replicas sharing a PostgreSQL\n" +
			"store refuse it at once; separate bbolt servers within one permit period). Revoking\n" +
			"by ID revokes every enrolment of that ID (each device it enrolled); --idhash revokes\n" +
			"one (see server enrolments). Prints each revoked idhash on stdout. When a DTA could\n" +
			"not be told, it is named and the exit status is 1: run revoke again later. In a\n" +
			"threshold domain (t of n DTAs) the revocation holds once n-t+1 DTAs acknowledged\n" +
			"it (no t DTAs are left to issue permits); the server tells the rest in the\n" +
			"background, and the exit status is 1 only below n-t+1.\n\n" +
			"The admin token comes from the environment variable " + envAdminToken + " (or a file named by " + envAdminToken + "_FILE) only.",
		Flags: append(adminFlags(), idhashFlag()),
		Action: func(ctx context.Context, c *ucli.Command) error {
			req, err := identityRequest(c, "revoke")
			if err != nil {
				return err
			}
			var out wire.RevokeResult
			if err := adminPost(ctx, c, "/v1/admin/revoke", req, &out); err != nil {
				return fmt.Errorf("server revoke: %w", err)
			}
			for _, h := range out.IDHashes {
				fmt.Fprintln(c.Root().Writer, h)
			}
			n := enrolmentsText(len(out.IDHashes))
			if out.AlreadyRevoked > 0 {
				n += fmt.Sprintf(" (%d of them revoked before, sent to the DTAs again)", out.AlreadyRevoked)
			}
			return revokeOutcome(c.Root().ErrWriter, n, &out)
		},
	}
}

// revokeOutcome says what a revocation achieved. In a threshold domain it is done
// once n−t+1 DTAs acknowledged it (no t DTAs are left to issue permits; the server
// tells the others in the background); in an additive domain once every DTA did.
func revokeOutcome(w io.Writer, n string, out *wire.RevokeResult) error {
	indices := func(xs []uint32) string {
		s := make([]string, len(xs))
		for i, x := range xs {
			s[i] = fmt.Sprint(x)
		}
		return strings.Join(s, ", ")
	}
	if q := out.DTAQuorum; q != nil {
		if !q.Effective {
			return fmt.Errorf("server revoke: %s revoked on the server, but only %d DTAs acknowledged it and %d are needed: "+
				"the others could still issue permits; the server keeps telling DTA %s in the background "+
				"(polyroot_server_revocation_notices_pending), or run revoke again when they are reachable",
				n, q.Acknowledged, q.Needed, indices(q.Retrying))
		}
		fmt.Fprintf(w, "polyroot: %s revoked on the server and acknowledged by %d DTAs (%d needed): no DTAs enough to issue permits are left", n, q.Acknowledged, q.Needed)
		if len(q.Retrying) > 0 {
			fmt.Fprintf(w, "; the server keeps telling DTA %s in the background", indices(q.Retrying))
		}
		fmt.Fprintln(w)
		return nil
	}
	if len(out.Unreachable) > 0 {
		return fmt.Errorf("server revoke: %s revoked on the server, but DTA %s could not be told; run revoke again when it is reachable",
			n, indices(out.Unreachable))
	}
	fmt.Fprintf(w, "polyroot: %s revoked on the server and at every DTA\n", n)
	return nil
}

// enrolmentsText is "1 enrolment" or "n enrolments".
func enrolmentsText(n int) string {
	if n == 1 {
		return "1 enrolment"
	}
	return fmt.Sprintf("%d enrolments", n)
}

func serverUnblockCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "unblock",
		Usage:     "unblock an identity blocked after too many failed logins",
		ArgsUsage: "ID",
		UsageText: "polyroot server unblock --server URL (ID | --idhash H)\n\n" +
			"Example:\n" +
			"   export " + envAdminToken + "='…'\n" +
			"   polyroot server unblock --server https://auth.example.com alice@example.com",
		Description: "Resets the failed-login counts (in a row and of the day) of every enrolment of\n" +
			"ID, or of the one named by --idhash, so it can log in again, and says how many of\n" +
			"them were blocked (or that none was). Check with the user first that the failures\n" +
			"were theirs.\n\n" +
			"The admin token comes from the environment variable " + envAdminToken + " (or a file named by " + envAdminToken + "_FILE) only.",
		Flags: append(adminFlags(), idhashFlag()),
		Action: func(ctx context.Context, c *ucli.Command) error {
			req, err := identityRequest(c, "unblock")
			if err != nil {
				return err
			}
			var out wire.UnblockResult
			if err := adminPost(ctx, c, "/v1/admin/unblock", req, &out); err != nil {
				return fmt.Errorf("server unblock: %w", err)
			}
			name := req.ID
			if name == "" {
				name = req.IDHash
			}
			if len(out.Blocked) == 0 {
				_, err = fmt.Fprintf(c.Root().Writer, "polyroot: %s was not blocked; its failure counts are reset (%s)\n", name, enrolmentsText(len(out.IDHashes)))
				return err
			}
			_, err = fmt.Fprintf(c.Root().Writer, "polyroot: unblocked %s (%s blocked, of %s)\n", name, enrolmentsText(len(out.Blocked)), enrolmentsText(len(out.IDHashes)))
			return err
		},
	}
}
