package openapitest

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

const base = `openapi: 3.1.0
info: {title: t, version: v1}
paths:
  /a:
    post:
      responses: {'200': {description: ok}}
  /log/checkpoint:
    get:
      responses: {'200': {description: ok}}
  /livez:
    get:
      responses: {'200': {description: ok}}
`

func router(extra ...func(*mux.Router)) *mux.Router {
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	r := mux.NewRouter()
	r.Handle("/a", ok).Methods(http.MethodPost)
	r.PathPrefix("/log/").Handler(ok).Methods(http.MethodGet)
	r.Handle("/livez", ok)
	for _, e := range extra {
		e(r)
	}
	return r
}

// TestDiff checks that the comparison catches each way a document and a route table
// can drift apart, and names the route.
func TestDiff(t *testing.T) {
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	cases := []struct {
		name string
		r    *mux.Router
		doc  string
		want []string // substrings, one per expected problem
	}{
		{"in-step", router(), base, nil},
		{"fail/route-not-documented", router(func(r *mux.Router) { r.Handle("/b", ok).Methods(http.MethodGet) }), base,
			[]string{"route GET /b is in the route table but not in the OpenAPI document"}},
		{"fail/method-not-documented", router(func(r *mux.Router) { r.Handle("/c", ok).Methods(http.MethodGet, http.MethodHead) }),
			base + "  /c:\n    get:\n      responses: {'200': {description: ok}}\n",
			[]string{"route HEAD /c is in the route table but not in the OpenAPI document"}},
		{"fail/documented-without-route", router(), base + "  /fake:\n    get:\n      responses: {'200': {description: ok}}\n",
			[]string{"the OpenAPI document has GET /fake, which no route serves"}},
		{"fail/documented-method-not-served", router(), strings.Replace(base, "  /a:\n", "  /a:\n    get:\n      responses: {'200': {description: ok}}\n", 1),
			[]string{"the OpenAPI document has GET /a, which no route serves"}},
		{"fail/prefix-without-paths", router(), strings.Replace(base, "/log/checkpoint", "/logs", 1),
			[]string{"route GET /log/* is in the route table but no path under it", "the OpenAPI document has GET /logs, which no route serves"}},
		{"fail/methodless-route-needs-get", router(), strings.Replace(base, "  /livez:\n    get:", "  /livez:\n    put:", 1),
			[]string{"route GET /livez is in the route table but not in the OpenAPI document"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Diff(tc.r, Load(t, []byte(tc.doc)))
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %d problems like %q", got, len(tc.want), tc.want)
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
					t.Errorf("got %q, want one containing %q", got, w)
				}
			}
		})
	}
}

func TestMatchTemplate(t *testing.T) {
	cases := []struct {
		tpl, path string
		want      map[string]string
	}{
		{"/tile/{level}/{index}", "/tile/0/000", map[string]string{"level": "0", "index": "000"}},
		{"/tile/{level}/{index}.p/{width}", "/tile/0/000.p/7", map[string]string{"level": "0", "index": "000", "width": "7"}},
		{"/tile/{level}/{index}", "/tile/0/000.p/7", nil},
		{"/plain", "/plain", nil},
	}
	for _, tc := range cases {
		got, ok := matchTemplate(tc.tpl, tc.path)
		if ok != (tc.want != nil) || len(got) != len(tc.want) {
			t.Errorf("%s on %s: got %v, %v", tc.tpl, tc.path, got, ok)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s on %s: %s = %q, want %q", tc.tpl, tc.path, k, got[k], v)
			}
		}
	}
}
