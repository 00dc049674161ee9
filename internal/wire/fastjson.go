package wire

import "github.com/polyroot/polyroot/internal/flatjson"

// maxFastDays bounds the days of a start request the fast path decodes (the server
// takes 1 to 30): nine digits, well inside an int.
const maxFastDays = 999_999_999

// The fast paths of the request bodies (httpx.FastUnmarshaler): each decodes the usual
// form of its body with flatjson and reports false for anything else, which then takes
// httpx.UnmarshalStrict's general path.

// UnmarshalStrictFast decodes the usual request, {"ticket":"…"} with a compact JWS
// (base64url and dots only, so no escape).
func (r *DTARequest) UnmarshalStrictFast(body []byte) bool {
	p := flatjson.NewScanner(body)
	var ticket []byte
	ok := p.Object([]string{"ticket"}, func(string) (ok bool) {
		ticket, ok = p.Bytes(isJWSByte)
		return ok
	})
	if ok {
		r.Ticket = string(ticket)
	}
	return ok
}

// UnmarshalStrictFast decodes the usual start request.
func (r *StartRequest) UnmarshalStrictFast(body []byte) bool {
	p := flatjson.NewScanner(body)
	var out StartRequest
	ok := p.Object([]string{"pass1", "purpose", "days", "domain", "unbound"}, func(key string) (ok bool) {
		switch key {
		case "pass1":
			out.Pass1, ok = p.Base64()
		case "purpose":
			out.Purpose, ok = p.Text()
		case "days":
			var days uint64
			days, ok = p.Uint(maxFastDays) // larger ones: the general path

			out.Days = int(days)
		case "domain":
			out.Domain, ok = p.Text()
		case "unbound":
			out.Unbound, ok = p.Bool()
		}
		return ok
	})
	if ok {
		*r = out
	}
	return ok
}

// UnmarshalStrictFast decodes the usual finish request.
func (r *FinishRequest) UnmarshalStrictFast(body []byte) bool {
	p := flatjson.NewScanner(body)
	var out FinishRequest
	ok := p.Object([]string{"pass2", "auth_request"}, func(key string) (ok bool) {
		switch key {
		case "pass2":
			out.Pass2, ok = p.Base64()
		case "auth_request":
			out.AuthRequest, ok = p.Text()
		}
		return ok
	})
	if ok {
		*r = out
	}
	return ok
}
