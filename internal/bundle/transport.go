package bundle

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// ErrPlainHTTP reports a DTA URL that is plain http:// on a host that is not loopback:
// the shares a DTA sends (and the tickets sent to it) would cross the network
// unencrypted, readable by a passive observer.
var ErrPlainHTTP = errors.New("bundle: plain http:// DTA URL outside loopback")

// IsLoopbackHost reports whether host (a URL's host name, without port or brackets) is
// "localhost" or a loopback IP address (127.0.0.0/8, ::1). Names are not resolved.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	// netip rather than net: the browser client has no use for the rest of package net.
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// CheckDTAURL accepts an https:// URL, and an http:// one on a loopback host (tests, a
// devnet); any other http:// URL only with allowHTTP (ErrPlainHTTP otherwise).
func CheckDTAURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%w: %q is not an https://host[:port] URL", ErrInvalid, raw)
	}
	if u.Scheme == "http" && !allowHTTP && !IsLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%w: %s", ErrPlainHTTP, raw)
	}
	return nil
}

// CheckDTAURLs applies CheckDTAURL to every DTA of b.
func (b *Bundle) CheckDTAURLs(allowHTTP bool) error {
	for _, d := range b.DTAs {
		if err := CheckDTAURL(d.URL, allowHTTP); err != nil {
			return fmt.Errorf("DTA %d: %w", d.Index, err)
		}
	}
	return nil
}
