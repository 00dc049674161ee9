package httpx

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// UnmarshalStrict decodes a JSON request body into v (a pointer) more strictly than
// encoding/json, and explains every refusal in API terms:
//
//   - the body is valid UTF-8 and has no \u escape of an unpaired UTF-16 surrogate
//     (encoding/json would silently turn both into U+FFFD);
//   - object keys match the JSON field names exactly, case included (encoding/json
//     matches them case-insensitively), and no key appears twice in one object
//     (encoding/json keeps the last);
//   - no unknown fields, and nothing after the value;
//   - every value has the JSON type of its field, integers are whole and in range,
//     []byte fields are padded standard base64.
//
// Messages name fields as they are spelt in JSON, with a path for nested ones
// ("dtas[0].url"), and types as "a string", "a number", …, never as Go types. The
// error is an *Error, 400 "bad_json".
func UnmarshalStrict(body []byte, v any) error {
	if f, ok := v.(FastUnmarshaler); ok && f.UnmarshalStrictFast(body) {
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("httpx: UnmarshalStrict needs a non-nil pointer, got %T", v)
	}
	if err := checkJSON(body, rv.Type().Elem()); err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		// checkJSON has refused what encoding/json would; what is left is an error of a
		// type's own UnmarshalJSON or UnmarshalText, which does not name Go types.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return badJSON("field %q must be %s", te.Field, kindName(te.Type))
		}
		return badJSON("the request body does not match the expected JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// A FastUnmarshaler decodes the usual form of its JSON request body itself, without
// reflection: UnmarshalStrict hands it the body first, and takes its general path (with
// every check and every error message) only when UnmarshalStrictFast reports false. It
// must accept nothing the general path refuses, and decode what it accepts to the same
// value.
type FastUnmarshaler interface {
	UnmarshalStrictFast(body []byte) bool
}

func badJSON(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "bad_json", format, args...)
}

// checkJSON walks body's tokens along type t.
func checkJSON(body []byte, t reflect.Type) error {
	if i := invalidUTF8(body); i >= 0 {
		return badJSON("the request body is not valid UTF-8 (at byte %d)", i)
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	c := &checker{d: d}
	tok, err := c.next()
	if err == io.EOF {
		return badJSON("the request body is empty; send a JSON object")
	}
	if err != nil {
		return err
	}
	if i := unpairedSurrogate(body); i >= 0 {
		return badJSON("the request body has a \\u escape of an unpaired UTF-16 surrogate (at byte %d): it is not a character", i)
	}
	if err := c.value(tok, t, ""); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return badJSON("the request body has data after the JSON value")
	}
	return nil
}

type checker struct {
	d     *json.Decoder
	depth int
}

// maxDepth bounds the nesting of objects and arrays (encoding/json allows 10000).
const maxDepth = 64

func (c *checker) next() (json.Token, error) {
	tok, err := c.d.Token()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, badJSON("the request body is not valid JSON: %s (at byte %d)", se.Error(), se.Offset)
		}
		if err == io.ErrUnexpectedEOF {
			return nil, badJSON("the request body is not valid JSON: it ends in the middle of a value")
		}
		return nil, badJSON("the request body is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return tok, nil
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// value checks the value that starts with tok against t; a nil t accepts any value
// (its keys are still checked for duplicates).
func (c *checker) value(tok json.Token, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	text := false
	if t != nil {
		switch {
		case reflect.PointerTo(t).Implements(unmarshalerType), t.Kind() == reflect.Interface:
			t = nil // the type decodes itself, or takes anything
		case reflect.PointerTo(t).Implements(textUnmarshalerType):
			text = true
		}
	}
	switch tok := tok.(type) {
	case nil: // null leaves the field as it is, as in encoding/json
		return nil
	case json.Delim:
		if tok == '{' {
			return c.object(t, path)
		}
		return c.array(t, path)
	case string:
		switch {
		case t == nil, text, t.Kind() == reflect.String:
			return nil
		case isBytes(t):
			if _, err := base64.StdEncoding.DecodeString(tok); err != nil {
				return badJSON("%s must be a base64 string (standard alphabet, with padding)", fieldName(path))
			}
			return nil
		}
		return mismatch(path, t, "a string")
	case json.Number:
		if t == nil {
			return nil
		}
		return checkNumber(tok, t, path)
	case bool:
		if t == nil || t.Kind() == reflect.Bool {
			return nil
		}
		return mismatch(path, t, "true or false")
	}
	return fmt.Errorf("httpx: unexpected JSON token %T", tok)
}

func (c *checker) object(t reflect.Type, path string) error {
	if c.depth++; c.depth > maxDepth {
		return badJSON("the request body nests objects and arrays deeper than %d", maxDepth)
	}
	defer func() { c.depth-- }()
	var fields map[string]reflect.Type
	var elem reflect.Type
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields = fieldsOf(t)
		case reflect.Map:
			elem = t.Elem()
		default:
			return mismatch(path, t, "an object")
		}
	}
	seen := map[string]bool{}
	for {
		tok, err := c.next()
		if err != nil {
			return unexpectedEnd(err)
		}
		if tok == json.Delim('}') {
			return nil
		}
		key := tok.(string) // the decoder only gives a string or '}' here
		sub := joinPath(path, key)
		if seen[key] {
			return badJSON("%s appears twice; give each field once", fieldName(sub))
		}
		seen[key] = true
		ft := elem
		if fields != nil {
			var ok bool
			if ft, ok = fields[key]; !ok {
				for name := range fields {
					if strings.EqualFold(name, key) {
						return badJSON("%s is not a known field: field names are case-sensitive; did you mean %q?", fieldName(sub), name)
					}
				}
				return badJSON("%s is not a known field", fieldName(sub))
			}
		}
		tok, err = c.next()
		if err != nil {
			return unexpectedEnd(err)
		}
		if err := c.value(tok, ft, sub); err != nil {
			return err
		}
	}
}

func (c *checker) array(t reflect.Type, path string) error {
	if c.depth++; c.depth > maxDepth {
		return badJSON("the request body nests objects and arrays deeper than %d", maxDepth)
	}
	defer func() { c.depth-- }()
	var elem reflect.Type
	if t != nil {
		if k := t.Kind(); (k != reflect.Slice && k != reflect.Array) || isBytes(t) {
			return mismatch(path, t, "an array")
		}
		elem = t.Elem()
	}
	for i := 0; ; i++ {
		tok, err := c.next()
		if err != nil {
			return unexpectedEnd(err)
		}
		if tok == json.Delim(']') {
			if t != nil && t.Kind() == reflect.Array && i > t.Len() {
				return badJSON("%s must have at most %d elements", fieldName(path), t.Len())
			}
			return nil
		}
		if err := c.value(tok, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
}

func unexpectedEnd(err error) error {
	if err == io.EOF {
		return badJSON("the request body is not valid JSON: it ends in the middle of a value")
	}
	return err
}

func checkNumber(n json.Number, t reflect.Type, path string) error {
	s := n.String()
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if _, err := strconv.ParseInt(s, 10, t.Bits()); err != nil {
			lo, hi := int64(-1)<<(t.Bits()-1), int64(1)<<(t.Bits()-1)-1
			return badJSON("%s must be a whole number from %d to %d, not %s", fieldName(path), lo, hi, clip(s))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if _, err := strconv.ParseUint(s, 10, t.Bits()); err != nil {
			hi := uint64(1)<<(t.Bits()-1) - 1 + uint64(1)<<(t.Bits()-1)
			return badJSON("%s must be a whole number from 0 to %d, not %s", fieldName(path), hi, clip(s))
		}
	case reflect.Float32, reflect.Float64:
		if _, err := strconv.ParseFloat(s, t.Bits()); err != nil {
			return badJSON("%s is out of range: %s", fieldName(path), clip(s))
		}
	default:
		return mismatch(path, t, "a number")
	}
	return nil
}

// clip shortens a number literal quoted in a message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "…"
	}
	return s
}

func mismatch(path string, want reflect.Type, got string) error {
	return badJSON("%s must be %s, not %s", fieldName(path), kindName(want), got)
}

func fieldName(path string) string {
	if path == "" {
		return "the request body"
	}
	return fmt.Sprintf("field %q", path)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// kindName names the JSON type a Go type decodes from.
func kindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if isBytes(t) {
			return "a base64 string"
		}
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "another JSON type"
}

func isBytes(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 &&
		!reflect.PointerTo(t.Elem()).Implements(unmarshalerType) && !reflect.PointerTo(t.Elem()).Implements(textUnmarshalerType)
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// fieldsOf returns the JSON names of a struct's fields, as encoding/json decodes them:
// exported fields, named by their json tag or their Go name, "-" left out, the fields
// of untagged embedded structs promoted (a shallower field wins a name).
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	out := map[string]reflect.Type{}
	depthOf := map[string]int{}
	var walk func(t reflect.Type, depth int, visited map[reflect.Type]bool)
	walk = func(t reflect.Type, depth int, visited map[reflect.Type]bool) {
		if visited[t] {
			return
		}
		visited[t] = true
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := sf.Type
			if sf.Anonymous && name == "" {
				et := ft
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if et.Kind() == reflect.Struct {
					walk(et, depth+1, visited)
					continue
				}
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			if d, ok := depthOf[name]; !ok || depth < d {
				out[name], depthOf[name] = ft, depth
			}
		}
	}
	walk(t, 0, map[reflect.Type]bool{})
	fieldCache.Store(t, out)
	return out
}

// invalidUTF8 returns the offset of the first byte of b that is not valid UTF-8, or -1.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// unpairedSurrogate returns the offset of a \u escape in a string of b that is a UTF-16
// surrogate without its partner, or -1. b need not be valid JSON: the syntax is
// checked separately.
func unpairedSurrogate(b []byte) int {
	in := false
	for i := 0; i < len(b); i++ {
		switch {
		case !in:
			in = b[i] == '"'
		case b[i] == '"':
			in = false
		case b[i] == '\\':
			start := i
			i++
			if i >= len(b) || b[i] != 'u' {
				continue
			}
			r := hex4(b, i+1)
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return start
			case r >= 0xD800 && r <= 0xDBFF:
				if i+6 >= len(b) || b[i+5] != '\\' || b[i+6] != 'u' {
					return start
				}
				if lo := hex4(b, i+7); lo < 0xDC00 || lo > 0xDFFF {
					return start
				}
				i += 6
			}
			i += 4
		}
	}
	return -1
}

// hex4 reads the four hex digits at b[i:], or returns -1.
func hex4(b []byte, i int) rune {
	if i+4 > len(b) {
		return -1
	}
	v, err := strconv.ParseUint(string(b[i:i+4]), 16, 32)
	if err != nil {
		return -1
	}
	return rune(v)
}
