package wire

import "encoding/base64"

// flatJSON scans the usual form of a request body: one JSON object whose members are
// strings without escapes, booleans and small non-negative integers, with JSON
// whitespace between the tokens. The fast paths of httpx.FastUnmarshaler use it; what
// it does not recognise they report as false, and httpx.UnmarshalStrict's general path
// then decides, with its checks and its error messages.
type flatJSON struct {
	b []byte
	i int
}

func (p *flatJSON) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

// lit consumes s after whitespace.
func (p *flatJSON) lit(s string) bool {
	p.ws()
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// str consumes a string whose every byte is allowed by ok (which must not allow '"',
// '\\' or a control character) and returns its contents.
func (p *flatJSON) str(ok func(byte) bool) ([]byte, bool) {
	if !p.lit(`"`) {
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

// bytes consumes a string of standard base64 (what encoding/json makes of a []byte).
func (p *flatJSON) bytes() ([]byte, bool) {
	s, ok := p.str(isBase64Byte)
	if !ok {
		return nil, false
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(out, s)
	return out[:n], err == nil
}

// text consumes a string of printable ASCII.
func (p *flatJSON) text() (string, bool) {
	s, ok := p.str(isPlainByte)
	return string(s), ok
}

// boolean consumes true or false.
func (p *flatJSON) boolean() (v, ok bool) {
	switch {
	case p.lit("true"):
		return true, true
	case p.lit("false"):
		return false, true
	}
	return false, false
}

// small consumes an integer of 1 to 9 digits without a leading zero (or 0).
func (p *flatJSON) small() (int, bool) {
	p.ws()
	start, n := p.i, 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' && p.i-start < 10 {
		n = n*10 + int(p.b[p.i]-'0')
		p.i++
	}
	digits := p.i - start
	if digits == 0 || digits > 9 || digits > 1 && p.b[start] == '0' {
		return 0, false
	}
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E' || p.b[p.i] >= '0' && p.b[p.i] <= '9') {
		return 0, false
	}
	return n, true
}

// object consumes the whole body as an object: member is called with each key (of
// names allowed as plain text) and consumes its value; every key is one of keys, none
// twice (keys has at most 8). Nothing may follow the object.
func (p *flatJSON) object(keys []string, member func(key string) bool) bool {
	if !p.lit("{") {
		return false
	}
	var seen uint8
	if p.lit("}") {
		p.ws()
		return p.i == len(p.b)
	}
	for {
		key, ok := p.str(isPlainByte)
		if !ok || !p.lit(":") {
			return false
		}
		k := -1
		for j, name := range keys {
			if string(key) == name {
				k = j
			}
		}
		if k < 0 || seen&(1<<k) != 0 || !member(keys[k]) {
			return false
		}
		seen |= 1 << k
		if p.lit("}") {
			p.ws()
			return p.i == len(p.b)
		}
		if !p.lit(",") {
			return false
		}
	}
}

func isBase64Byte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}

// isPlainByte allows printable ASCII but '"' and '\\': a JSON string of such bytes is
// its own contents.
func isPlainByte(c byte) bool { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' }

// UnmarshalStrictFast decodes the usual start request (httpx.FastUnmarshaler).
func (r *StartRequest) UnmarshalStrictFast(body []byte) bool {
	p := flatJSON{b: body}
	var out StartRequest
	ok := p.object([]string{"pass1", "purpose", "days", "domain", "unbound"}, func(key string) (ok bool) {
		switch key {
		case "pass1":
			out.Pass1, ok = p.bytes()
		case "purpose":
			out.Purpose, ok = p.text()
		case "days":
			out.Days, ok = p.small()
		case "domain":
			out.Domain, ok = p.text()
		case "unbound":
			out.Unbound, ok = p.boolean()
		}
		return ok
	})
	if ok {
		*r = out
	}
	return ok
}

// UnmarshalStrictFast decodes the usual finish request (httpx.FastUnmarshaler).
func (r *FinishRequest) UnmarshalStrictFast(body []byte) bool {
	p := flatJSON{b: body}
	var out FinishRequest
	ok := p.object([]string{"pass2", "auth_request"}, func(key string) (ok bool) {
		switch key {
		case "pass2":
			out.Pass2, ok = p.bytes()
		case "auth_request":
			out.AuthRequest, ok = p.text()
		}
		return ok
	})
	if ok {
		*r = out
	}
	return ok
}
