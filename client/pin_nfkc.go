//go:build !(js && wasm)

package client

import "golang.org/x/text/unicode/norm"

// nfkc returns a new slice with the Unicode NFKC form of the UTF-8 text pin.
func nfkc(pin []byte) ([]byte, error) {
	return norm.NFKC.Append(nil, pin...), nil
}
