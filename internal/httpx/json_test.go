package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// jsonTestRequest has the kinds of fields the services' requests have, and nested ones.
type jsonTestRequest struct {
	Ticket string            `json:"ticket"`
	Pass1  []byte            `json:"pass1,omitempty"`
	TTL    int64             `json:"ttl_seconds,omitempty"`
	Days   int               `json:"days,omitempty"`
	Slot   uint64            `json:"slot,omitempty"`
	Small  uint8             `json:"small,omitempty"`
	Device bool              `json:"device,omitempty"`
	Ratio  float64           `json:"ratio,omitempty"`
	Inner  *jsonTestInner    `json:"inner,omitempty"`
	List   []jsonTestInner   `json:"list,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	Raw    json.RawMessage   `json:"raw,omitempty"`
	Hidden string            `json:"-"`
	jsonTestEmbedded
}

type jsonTestInner struct {
	URL   string `json:"url"`
	Index uint32 `json:"index"`
}

type jsonTestEmbedded struct {
	Extra string `json:"extra,omitempty"`
}

func decodeBody(t *testing.T, body string, v any) error {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return DecodeJSON(httptest.NewRecorder(), r, MaxBody, v)
}

// goTypeWords are what an error message must never contain: Go's names for types.
var goTypeWords = []string{"Go ", "struct", "int64", "uint8", "uint32", "uint64", "float64", "[]uint8", "map[", "jsonTest", "json:", "unmarshal"}

func TestDecodeJSON(t *testing.T) {
	cases := []struct {
		name, body string
		want       string // "" = accepted; else a phrase the bad_json message has
	}{
		{"ok/all-fields", `{"ticket":"t","pass1":"AQID","ttl_seconds":-5,"days":3,"slot":18446744073709551615,"small":255,"device":true,` +
			`"ratio":1.5e3,"inner":{"url":"https://a","index":1},"list":[{"url":"u","index":2}],"labels":{"A":"b","a":"c"},"raw":{"x":[1,{"y":null}]},"extra":"e"}`, ""},
		{"ok/empty-object", `{}`, ""},
		{"ok/null-fields", `{"ticket":null,"inner":null}`, ""},
		{"ok/escaped-non-ascii", `{"ticket":"\u00e9\ud83d\ude00 é😀"}`, ""},
		{"ok/whitespace", " \n{ \"ticket\" : \"x\" }\n", ""},
		{"fail/duplicate-key", `{"ticket":"a","ticket":"b"}`, `field "ticket" appears twice`},
		{"fail/duplicate-key-nested", `{"inner":{"url":"a","index":1,"url":"b"}}`, `field "inner.url" appears twice`},
		{"fail/duplicate-key-in-opaque-value", `{"raw":{"x":1,"x":2}}`, `field "raw.x" appears twice`},
		{"fail/duplicate-key-escaped", `{"ticket":"a","tick\u0065t":"b"}`, `field "ticket" appears twice`},
		{"fail/key-case", `{"Ticket":"a"}`, `field "Ticket" is not a known field: field names are case-sensitive; did you mean "ticket"?`},
		{"fail/key-case-nested", `{"list":[{"URL":"a"}]}`, `field "list[0].URL" is not a known field: field names are case-sensitive; did you mean "url"?`},
		{"fail/key-case-kelvin-sign", "{\"tic\u212aet\":\"a\"}", `is not a known field`},
		{"fail/unknown-field", `{"ticket":"a","admin":true}`, `field "admin" is not a known field`},
		{"fail/hidden-field", `{"Hidden":"a"}`, `field "Hidden" is not a known field`},
		{"fail/invalid-utf8", "{\"ticket\":\"al\xffce\"}", `not valid UTF-8 (at byte 13)`},
		{"fail/invalid-utf8-in-key", "{\"tick\xc0\xafet\":\"a\"}", `not valid UTF-8`},
		{"fail/invalid-utf8-outside-strings", "{\"ticket\":\"a\"}\xff", `not valid UTF-8`},
		{"fail/lone-high-surrogate", `{"ticket":"a\ud800b"}`, `unpaired UTF-16 surrogate (at byte 12)`},
		{"fail/lone-low-surrogate", `{"ticket":"\udc00"}`, `unpaired UTF-16 surrogate`},
		{"fail/high-surrogate-at-end", `{"ticket":"\ud800"}`, `unpaired UTF-16 surrogate`},
		{"fail/surrogate-in-key", `{"\ud800":"a"}`, `unpaired UTF-16 surrogate`},
		{"fail/wrong-type-message-has-no-go-type", `{"ticket":42}`, `field "ticket" must be a string, not a number`},
		{"fail/wrong-type-number", `{"ttl_seconds":"9"}`, `field "ttl_seconds" must be a whole number, not a string`},
		{"fail/wrong-type-bool", `{"device":"yes"}`, `field "device" must be true or false, not a string`},
		{"fail/wrong-type-object", `{"inner":[]}`, `field "inner" must be an object, not an array`},
		{"fail/wrong-type-array", `{"list":{}}`, `field "list" must be an array, not an object`},
		{"fail/wrong-type-bytes", `{"pass1":[1,2]}`, `field "pass1" must be a base64 string, not an array`},
		{"fail/wrong-type-nested", `{"list":[{"url":"a","index":"1"}]}`, `field "list[0].index" must be a whole number, not a string`},
		{"fail/wrong-type-map-value", `{"labels":{"a":1}}`, `field "labels.a" must be a string, not a number`},
		{"fail/bad-base64", `{"pass1":"not base64!"}`, `field "pass1" must be a base64 string`},
		{"fail/integer-overflow", `{"ttl_seconds":9223372036854775808}`, `field "ttl_seconds" must be a whole number from -9223372036854775808 to 9223372036854775807`},
		{"fail/integer-fraction", `{"days":1.5}`, `field "days" must be a whole number`},
		{"fail/integer-exponent", `{"days":1e3}`, `field "days" must be a whole number`},
		{"fail/unsigned-negative", `{"slot":-1}`, `field "slot" must be a whole number from 0 to 18446744073709551615`},
		{"fail/uint8-range", `{"small":256}`, `field "small" must be a whole number from 0 to 255`},
		{"fail/float-range", `{"ratio":1e999}`, `field "ratio" is out of range`},
		{"fail/not-an-object", `["ticket"]`, `the request body must be an object, not an array`},
		{"fail/string-body", `"ticket"`, `the request body must be an object, not a string`},
		{"fail/empty", ``, `the request body is empty`},
		{"fail/trailing-data", `{"ticket":"a"}{}`, `data after the JSON value`},
		{"fail/trailing-garbage", `{"ticket":"a"} x`, `data after the JSON value`},
		{"fail/truncated", `{"ticket":"a"`, `ends in the middle of a value`},
		{"fail/syntax", `{"ticket" "a"}`, `not valid JSON: invalid character`},
		{"fail/trailing-comma", `{"ticket":"a",}`, `not valid JSON`},
		{"fail/too-deep", `{"raw":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, `deeper than 64`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v jsonTestRequest
			err := decodeBody(t, tc.body, &v)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Code != "bad_json" {
				t.Fatalf("got %v, want 400 bad_json", err)
			}
			if !strings.Contains(e.Message, tc.want) {
				t.Fatalf("message %q does not say %q", e.Message, tc.want)
			}
			for _, w := range goTypeWords {
				if strings.Contains(e.Message, w) {
					t.Fatalf("message %q names a Go type (%q)", e.Message, w)
				}
			}
		})
	}
}

// TestDecodeJSONValues: what is accepted decodes as encoding/json decodes it.
func TestDecodeJSONValues(t *testing.T) {
	var v jsonTestRequest
	if err := decodeBody(t, `{"ticket":"caf\u00e9","pass1":"AQID","inner":{"url":"u","index":7},"extra":"e"}`, &v); err != nil {
		t.Fatal(err)
	}
	want := jsonTestRequest{Ticket: "café", Pass1: []byte{1, 2, 3}, Inner: &jsonTestInner{URL: "u", Index: 7}, jsonTestEmbedded: jsonTestEmbedded{Extra: "e"}}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("got %+v", v)
	}
}

func TestDecodeJSONMediaTypeAndSize(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "text/plain")
	var e *Error
	if err := DecodeJSON(httptest.NewRecorder(), r, MaxBody, &jsonTestRequest{}); !errors.As(err, &e) || e.Code != "unsupported_media_type" {
		t.Fatalf("text/plain: %v", err)
	}
	r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"ticket":"`+strings.Repeat("a", 100)+`"}`))
	r.Header.Set("Content-Type", "application/json; charset=utf-8")
	if err := DecodeJSON(httptest.NewRecorder(), r, 50, &jsonTestRequest{}); !errors.As(err, &e) || e.Code != "body_too_large" {
		t.Fatalf("too large: %v", err)
	}
}

// FuzzDecodeJSON: UnmarshalStrict never panics; what it accepts is valid UTF-8 and
// valid JSON that encoding/json also accepts, and re-encoded it decodes to the same value.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"ticket":"a","pass1":"AQID","ttl_seconds":1,"inner":{"url":"u","index":1}}`,
		`{"list":[{"url":"a","index":1},{"url":"b","index":2}],"labels":{"k":"v"}}`,
		`{"raw":{"a":[1,2,{"b":null}],"c":"\ud83d\ude00"}}`, `{"raw":{"&&c":"<\u2028>"}}`, `{"ticket":"a","ticket":"b"}`, `{"Ticket":"a"}`,
		"{\"ticket\":\"\xff\"}", `{"ticket":"\ud800"}`, `{"days":1e3}`, `{"slot":-1}`, `[1,2]`, `null`, `{"extra":"x","device":true,"ratio":-0.5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v jsonTestRequest
		err := UnmarshalStrict(body, &v)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != "bad_json" {
				t.Fatalf("error %v is not bad_json", err)
			}
			return
		}
		if !utf8.Valid(body) || !json.Valid(body) {
			t.Fatalf("accepted invalid input %q", body)
		}
		var loose jsonTestRequest
		if err := json.Unmarshal(body, &loose); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
		}
		again, err := json.Marshal(&v)
		if err != nil {
			t.Fatal(err)
		}
		var w jsonTestRequest
		if err := UnmarshalStrict(again, &w); err != nil {
			t.Fatalf("re-encoded %s refused: %v", again, err)
		}
		if !reflect.DeepEqual(normalize(v), normalize(w)) {
			t.Fatalf("re-decoded differently:\n%+v\n%+v", v, w)
		}
		if !bytes.Equal(mustJSON(t, v), mustJSON(t, w)) {
			t.Fatalf("re-decoded differently: %s vs %s", mustJSON(t, v), mustJSON(t, w))
		}
	})
}

// normalize removes what a JSON round trip cannot keep apart: empty and nil slices and
// maps (omitempty drops both), and RawMessage whitespace.
func normalize(v jsonTestRequest) jsonTestRequest {
	if len(v.Pass1) == 0 {
		v.Pass1 = nil
	}
	if len(v.List) == 0 {
		v.List = nil
	}
	if len(v.Labels) == 0 {
		v.Labels = nil
	}
	if len(v.Raw) > 0 {
		// As json.Marshal writes a RawMessage: compacted, and <, >, &, U+2028 and
		// U+2029 escaped (\u0026 …), which decodes to the same value.
		var b, escaped bytes.Buffer
		if json.Compact(&b, v.Raw) == nil {
			json.HTMLEscape(&escaped, b.Bytes())
			v.Raw = escaped.Bytes()
		}
	}
	if len(v.Raw) == 0 || string(v.Raw) == "null" {
		v.Raw = nil
	}
	return v
}

func mustJSON(t *testing.T, v jsonTestRequest) []byte {
	b, err := json.Marshal(normalize(v))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
