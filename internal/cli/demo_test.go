package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs `polyroot demo` as `make demo` does: exit 0, and every step told.
func TestDemo(t *testing.T) {
	out, errOut := &syncBuffer{}, &syncBuffer{}
	if code := Main(context.Background(), []string{"polyroot", "demo"}, out, errOut); code != 0 {
		t.Fatalf("polyroot demo: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"1. A domain starts", "no single DTA knows the domain key",
		"2. The registrar enrols alice",
		"3. alice's client collects", "DTA 3: her client share s_3·A",
		"4. alice logs in", `logged in as "alice@example.com"`,
		"5. Someone with alice's phone", "alice is now blocked", "the registrar unblocked her",
		"6. A TLS interceptor", "login refused: client: possible interception",
		"7. DTA 1 goes rogue", "refused (login_failed)", "alice's client refused it: client: the server could not prove",
		"8. The DTAs' logs are anchored", "each at the index its DTA promised her",
		"9. alice's device is reported stolen", "refuses her permits even with a valid permit ticket: revoked",
		"10. Another domain trusts any 3 of 5 DTAs", "qualified dealers [1 2 3 4 5]", "(unreachable: 2 and 4)", `logged in as "bob@example.com"`,
		"11. Its DTAs refresh their shares", "a share stolen before is worthless", "with the token it enrolled before the resharing",
		"Every step behaved as expected",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	// The code's expiry, a day ahead, with its date.
	if !regexp.MustCompile(`valid until \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC`).MatchString(out.String()) {
		t.Errorf("the demo's output gives the code's expiry without its date")
	}
	if t.Failed() {
		t.Log(out.String())
	}
}
