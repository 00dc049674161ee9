// Package flatjson scans the usual form of a small JSON object, for the fast paths
// beside encoding/json: members whose values are strings without escapes, booleans,
// integers without sign, fraction or exponent, and arrays of those, with JSON
// whitespace between the tokens. It decodes nothing else: whatever it does not
// recognise it reports as false, and its caller then takes the general path (with
// every check and every error message), so a fast path must accept nothing the general
// path refuses.
//
// It allocates nothing but the strings it returns, and it never panics.
package flatjson

import "encoding/base64"

// A Scanner reads one JSON value from the bytes it was made with.
type Scanner struct {
	b []byte
	i int
}

// NewScanner returns a Scanner of b.
func NewScanner(b []byte) *Scanner { return &Scanner{b: b} }

func (p *Scanner) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

// Peek returns the next byte after whitespace, or 0 at the end.
func (p *Scanner) Peek() byte {
	if p.ws(); p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// Lit consumes s after whitespace.
func (p *Scanner) Lit(s string) bool {
	p.ws()
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// Bytes consumes a string whose every byte is allowed by ok, which must not allow '"',
// '\\' or a control character (a string of such bytes is its own contents), and
// returns its contents, a part of the scanned bytes.
func (p *Scanner) Bytes(ok func(byte) bool) ([]byte, bool) {
	if !p.Lit(`"`) {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) && ok(p.b[p.i]) {
		p.i++
	}
	if p.i == len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	p.i++
	return p.b[start : p.i-1], true
}

// Text consumes a string of printable ASCII.
func (p *Scanner) Text() (string, bool) {
	s, ok := p.Bytes(IsPlain)
	return string(s), ok
}

// Base64 consumes a string of standard base64, encoding/json's form of a []byte, and
// returns it decoded as encoding/json would.
func (p *Scanner) Base64() ([]byte, bool) {
	s, ok := p.Bytes(isBase64)
	if !ok {
		return nil, false
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(out, s)
	return out[:n], err == nil
}

// Bool consumes true or false.
func (p *Scanner) Bool() (v, ok bool) {
	switch {
	case p.Lit("true"):
		return true, true
	case p.Lit("false"):
		return false, true
	}
	return false, false
}

// Uint consumes an integer without sign, fraction or exponent, at most max.
func (p *Scanner) Uint(max uint64) (uint64, bool) {
	p.ws()
	start := p.i
	var v uint64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		d := uint64(p.b[p.i] - '0')
		if v > (max-d)/10 {
			return 0, false
		}
		v = v*10 + d
		p.i++
	}
	n := p.i - start
	if n == 0 || n > 1 && p.b[start] == '0' {
		return 0, false // no digits, or a leading zero: not JSON
	}
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return 0, false
	}
	return v, true
}

// Array consumes an array, calling elem to consume each element.
func (p *Scanner) Array(elem func() bool) bool {
	if !p.Lit("[") {
		return false
	}
	if p.Lit("]") {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if p.Lit("]") {
			return true
		}
		if !p.Lit(",") {
			return false
		}
	}
}

// Object consumes the whole input as one object: member is called with each key and
// consumes its value. Every key must be one of keys (at most 32), none twice, and
// nothing but whitespace may follow the object.
func (p *Scanner) Object(keys []string, member func(key string) bool) bool {
	if len(keys) > 32 || !p.Lit("{") {
		return false
	}
	var seen uint32
	if !p.Lit("}") {
		for {
			key, ok := p.Bytes(IsPlain)
			if !ok || !p.Lit(":") {
				return false
			}
			k := -1
			for j, name := range keys {
				if string(key) == name {
					k = j
					break
				}
			}
			if k < 0 || seen&(1<<k) != 0 || !member(keys[k]) {
				return false
			}
			seen |= 1 << k
			if p.Lit("}") {
				break
			}
			if !p.Lit(",") {
				return false
			}
		}
	}
	p.ws()
	return p.i == len(p.b)
}

// IsPlain allows printable ASCII but '"' and '\\'.
func IsPlain(c byte) bool { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' }

func isBase64(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}
