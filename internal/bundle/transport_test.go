package bundle

import (
	"errors"
	"testing"
)

func TestCheckDTAURL(t *testing.T) {
	cases := []struct {
		name, url string
		allow     bool
		want      error
	}{
		{"ok/https", "https://dta1.example.net:8441", false, nil},
		{"ok/http-loopback", "http://127.0.0.1:8441", false, nil},
		{"ok/http-loopback-127-8", "http://127.3.2.1:8441", false, nil},
		{"ok/http-loopback-ipv6", "http://[::1]:8441", false, nil},
		{"ok/http-localhost", "http://localhost:8441", false, nil},
		{"ok/http-allowed-explicitly", "http://dta-1:8441", true, nil},
		{"fail/http-non-loopback", "http://dta-1:8441", false, ErrPlainHTTP},
		{"fail/http-non-loopback-ip", "http://192.0.2.7", false, ErrPlainHTTP},
		{"fail/http-localhost-lookalike", "http://localhost.example.net", false, ErrPlainHTTP},
		{"fail/http-ipv4-mapped-non-loopback", "http://[::ffff:192.0.2.7]", false, ErrPlainHTTP},
		{"fail/not-a-url", "dta-1:8441", true, ErrInvalid},
		{"fail/ftp", "ftp://dta1.example.net", true, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckDTAURL(tc.url, tc.allow)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("CheckDTAURL(%q, %v) = %v, want %v", tc.url, tc.allow, err, tc.want)
			}
		})
	}
}
