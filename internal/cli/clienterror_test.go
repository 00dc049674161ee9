package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/client"
)

// TestClientErrorNamesUnavailableDTAs: when the auth server refuses an enrolment
// because DTAs are down, the command says which ones and that the code is still good,
// in the server's words.
func TestClientErrorNamesUnavailableDTAs(t *testing.T) {
	api := &client.APIError{From: "server", Status: 503, Code: "dta_unavailable",
		Message: "DTA 2 unreachable: enrolment needs every DTA of the domain; the enrolment code was not used and is still valid: try again later"}
	msg := clientError("enroll", fmt.Errorf("wrapped: %w", api)).Error()
	for _, want := range []string{"client enroll: ", "503 dta_unavailable", "DTA 2 unreachable", "the enrolment code was not used and is still valid"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
}
