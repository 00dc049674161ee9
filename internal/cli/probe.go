package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode"

	ucli "github.com/urfave/cli/v3"
)

// probeCommand is the health check of the container image (deploy/compose), which
// holds only the polyroot binary: no shell, no curl.
func probeCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "probe",
		Usage:     "GET a URL and exit 0 only if it answers 200 OK (a health check without curl)",
		ArgsUsage: "URL",
		UsageText: "polyroot probe [--timeout DURATION] [--wait DURATION] [--ca-file FILE] URL\n\n" +
			"Examples:\n" +
			"   polyroot probe http://127.0.0.1:8441/readyz\n" +
			"   polyroot dta serve --config dta-1.toml & polyroot probe --wait 30s http://127.0.0.1:8441/readyz   # until it is ready\n" +
			"   polyroot probe --ca-file /etc/polyroot/ca.pem --timeout 2s https://auth.example.com/readyz",
		Description: "Sends one GET to URL and exits 0 if the answer is 200 OK. Any other status, a\n" +
			"redirect (not followed: a health endpoint answers itself), a timeout or a connection\n" +
			"error exits 1 with the reason, and the start of the body (/readyz names what is not\n" +
			"ready), on stderr. Prints nothing on success. deploy/compose/compose.yaml uses it\n" +
			"as the containers' healthcheck on /readyz.\n" +
			"--wait tries again every 200 ms until the answer is 200 OK or the duration has\n" +
			"passed: a script starts a service in the background and waits for it with this.",
		Flags: []ucli.Flag{
			&ucli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "give up on one request after `DURATION`"},
			&ucli.DurationFlag{Name: "wait", Usage: "try again until it answers 200 OK, for up to `DURATION` (0: one try)"},
			caFileFlag(),
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if c.Args().Len() != 1 {
				return errors.New("probe: give one URL")
			}
			target := c.Args().First()
			if u, err := url.Parse(target); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				return fmt.Errorf("probe: %q: want an http:// or https:// URL", target)
			}
			if c.Duration("timeout") <= 0 || c.Duration("wait") < 0 {
				return errors.New("probe: --timeout must be positive, --wait 0 or more")
			}
			hc, err := httpClient(c.String("ca-file"), c.Duration("timeout"))
			if err != nil {
				return fmt.Errorf("probe: --ca-file: %w", err)
			}
			hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			deadline := time.Now().Add(c.Duration("wait"))
			for {
				degraded, err := probeOnce(ctx, hc, target)
				if err == nil && degraded != "" {
					fmt.Fprintf(c.Root().ErrWriter, "polyroot: probe: %s is ready but degraded: %s\n", target, degraded)
				}
				if err == nil || !time.Now().Before(deadline) {
					return err
				}
				select {
				case <-ctx.Done():
					return err
				case <-time.After(200 * time.Millisecond):
				}
			}
		},
	}
}

// probeOnce sends one GET to target: nil if it answers 200 OK, with what is degraded
// when the answer is a /readyz body that says so.
func probeOnce(ctx context.Context, hc *http.Client, target string) (degraded string, _ error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", fmt.Errorf("probe: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		if _, _, tlsErr := tlsProblem(err, "--ca-file"); tlsErr {
			return "", fmt.Errorf("probe: %w", transportError(err, "--ca-file"))
		}
		return "", fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8192))
	if resp.StatusCode == http.StatusOK {
		return degradedChecks(body), nil
	}
	return "", fmt.Errorf("probe: %s answered %s%s", target, resp.Status, bodyLine(body[:min(len(body), 512)]))
}

// degradedChecks lists the checks that a /readyz body calls degraded ("" if none, or
// not such a body).
func degradedChecks(body []byte) string {
	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if json.Unmarshal(body, &ready) != nil || ready.Status != "degraded" {
		return ""
	}
	var what []string
	for name, state := range ready.Checks {
		if state != "ok" {
			what = append(what, name+": "+state)
		}
	}
	sort.Strings(what)
	return strings.TrimPrefix(bodyLine([]byte(strings.Join(what, "; "))), ": ")
}

// bodyLine is ": " and a server's text on one line, without control characters that a
// terminal would interpret ("" for no text).
func bodyLine(body []byte) string {
	msg := strings.Map(func(r rune) rune {
		if r == '\n' {
			return ' '
		}
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(string(body), "?"))
	if msg = strings.TrimSpace(msg); msg != "" {
		msg = ": " + msg
	}
	return msg
}
