package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/polyroot/polyroot/client"
)

// TLS failures, worded for the command line. Go's HTTP client reports a certificate
// it cannot verify as a transport error, which the messages around it called
// "unreachable": the fix is not to wait and retry but to trust the right CA, or to
// use the right URL.

// tlsProblem says why a connection's TLS failed, and what to do about it, when err
// holds such a failure; caFlag is the flag that adds a CA to trust (--ca-file,
// --dta-ca-file, --vault-ca-file).
func tlsProblem(err error, caFlag string) (reason, remedy string, ok bool) {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
	)
	useCA := "use " + caFlag + " with the PEM certificate of the CA that signed it"
	switch {
	case errors.As(err, &unknown):
		return "its TLS certificate is signed by an authority this machine does not trust", useCA, true
	case errors.As(err, &hostname):
		names := hostname.Certificate.DNSNames
		for _, ip := range hostname.Certificate.IPAddresses {
			names = append(names, ip.String())
		}
		return fmt.Sprintf("its TLS certificate is for %s, not %s", strings.Join(names, ", "), hostname.Host),
			"check the URL, or have the certificate reissued with this name", true
	case errors.As(err, &invalid):
		switch invalid.Reason {
		case x509.Expired:
			return "its TLS certificate has expired or is not valid yet (" + invalid.Detail + ")",
				"have it renewed, and check this machine's clock (now " + time.Now().UTC().Format(time.RFC3339) + ")", true
		case x509.NotAuthorizedToSign:
			return "its TLS certificate is signed by a certificate that is not a CA", useCA, true
		}
		return "its TLS certificate is invalid (" + invalid.Error() + ")", useCA, true
	case errors.As(err, &verify):
		return "its TLS certificate does not verify (" + verify.Err.Error() + ")", useCA, true
	case errors.As(err, &record), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "it does not speak TLS (a plain-HTTP port?)", "check the URL's scheme and port", true
	}
	return "", "", false
}

// peer names the other end of a failed request: the scheme and host of the URL it
// was sent to, or "the server".
func peer(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			return u.Scheme + "://" + u.Host
		}
	}
	return "the server"
}

// transportError words the error of a request that got no answer: "not trusted" and
// the remedy for a TLS failure, else "unreachable" with the cause.
func transportError(err error, caFlag string) error {
	if reason, remedy, ok := tlsProblem(err, caFlag); ok {
		return fmt.Errorf("%s is not trusted: %s; %s", peer(err), reason, remedy)
	}
	return fmt.Errorf("%s is unreachable: %w", peer(err), err)
}

// clientTLSError words a client library error that holds TLS failures (of the
// server or of DTAs, several when Enroll joins them), or returns "" for one that does
// not.
func clientTLSError(err error) string {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		if _, _, ok := tlsProblem(err, ""); !ok {
			return ""
		}
		var parts []string
		for _, e := range joined.Unwrap() {
			s := clientTLSError(e)
			if s == "" {
				s = strings.TrimPrefix(e.Error(), "client: ")
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, "; ")
	}
	reason, remedy, ok := tlsProblem(err, "--ca-file")
	if !ok {
		return ""
	}
	who := peer(err)
	var du *client.DTAUnreachableError
	if errors.As(err, &du) {
		who = fmt.Sprintf("DTA %d (%s)", du.Index, du.URL)
	}
	return fmt.Sprintf("%s is not trusted: %s; %s", who, reason, remedy)
}
