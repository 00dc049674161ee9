package flatjson

import (
	"encoding/json"
	"maps"
	"testing"
)

// decodeTexts scans body as an object of text members named a, b and c.
func decodeTexts(body []byte) (map[string]string, bool) {
	p := NewScanner(body)
	out := map[string]string{}
	ok := p.Object([]string{"a", "b", "c"}, func(key string) (ok bool) {
		out[key], ok = p.Text()
		return ok
	})
	return out, ok
}

func TestObject(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		ok   bool
	}{
		{"ok/empty", " {\n} ", true},
		{"ok/members", `{"a":"x", "c" : "y z"}`, true},
		{"fail/duplicate", `{"a":"x","a":"y"}`, false},
		{"fail/unknown", `{"d":"x"}`, false},
		{"fail/escape", `{"a":"\u0078"}`, false},
		{"fail/non-ascii", `{"a":"é"}`, false},
		{"fail/trailing-comma", `{"a":"x",}`, false},
		{"fail/trailing-data", `{"a":"x"}x`, false},
		{"fail/unterminated", `{"a":"x"`, false},
		{"fail/not-a-string", `{"a":1}`, false},
		{"fail/nothing", ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := decodeTexts([]byte(tc.body)); ok != tc.ok {
				t.Fatalf("ok %v, want %v", ok, tc.ok)
			}
		})
	}
}

func TestUintBoolArray(t *testing.T) {
	for _, tc := range []struct {
		body string
		max  uint64
		want uint64
		ok   bool
	}{
		{"0", 10, 0, true},
		{" 42", 100, 42, true},
		{"18446744073709551615", 1<<64 - 1, 1<<64 - 1, true},
		{"18446744073709551616", 1<<64 - 1, 0, false},
		{"101", 100, 0, false},
		{"01", 100, 0, false},
		{"1.0", 100, 0, false},
		{"1e2", 1000, 0, false},
		{"-1", 100, 0, false},
		{"", 100, 0, false},
	} {
		if v, ok := NewScanner([]byte(tc.body)).Uint(tc.max); v != tc.want || ok != tc.ok {
			t.Errorf("Uint(%q, %d) = %d, %v; want %d, %v", tc.body, tc.max, v, ok, tc.want, tc.ok)
		}
	}
	if v, ok := NewScanner([]byte(" true")).Bool(); !v || !ok {
		t.Error("true")
	}
	if v, ok := NewScanner([]byte("false")).Bool(); v || !ok {
		t.Error("false")
	}
	if _, ok := NewScanner([]byte("null")).Bool(); ok {
		t.Error("null taken for a boolean")
	}
	for body, want := range map[string]int{`[]`: 0, `[ "a" , "b" ]`: 2} {
		p, n := NewScanner([]byte(body)), 0
		if !p.Array(func() bool { _, ok := p.Text(); n++; return ok }) || n != want {
			t.Errorf("Array(%s): %d elements", body, n)
		}
	}
	for _, body := range []string{`["a",]`, `["a"`, `[,]`, `"a"`} {
		p := NewScanner([]byte(body))
		if p.Array(func() bool { _, ok := p.Text(); return ok }) {
			t.Errorf("Array(%s) accepted", body)
		}
	}
	if b, ok := NewScanner([]byte(`"AAEC"`)).Base64(); !ok || string(b) != "\x00\x01\x02" {
		t.Errorf("Base64: %x, %v", b, ok)
	}
	if _, ok := NewScanner([]byte(`"AAE"`)).Base64(); ok {
		t.Error("Base64 took a truncated encoding")
	}
}

// FuzzObject: whatever Object accepts, encoding/json decodes to the same members.
func FuzzObject(f *testing.F) {
	f.Add([]byte(`{"a":"x","b":"y"}`))
	f.Add([]byte(` { "c" : "" } `))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := decodeTexts(body)
		if !ok {
			return
		}
		var want map[string]string
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("Object accepted %q, encoding/json refuses it: %v", body, err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("%q: Object %q, encoding/json %q", body, got, want)
		}
	})
}
