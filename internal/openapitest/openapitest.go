// Package openapitest keeps a service's committed OpenAPI document honest: it loads and
// validates the document, compares its operations with the service's gorilla/mux route
// table both ways, and checks real responses against the documented ones. Only tests
// import it, so the services do not link the OpenAPI library.
package openapitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/gorilla/mux"
)

// Load parses an OpenAPI document and validates it, failing the test if it is not a
// valid OpenAPI 3.1 document.
func Load(t testing.TB, raw []byte) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatalf("the OpenAPI document does not load: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("the OpenAPI document is version %q, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("the OpenAPI document is not valid: %v", err)
	}
	return doc
}

// Diff compares the router's routes with the document's operations and returns one
// line per difference, naming the method and path: a route the document lacks, or an
// operation no route serves.
//
// A route registered with PathPrefix covers every documented path under its prefix
// (the log's tile patterns), and needs at least one. A route registered without
// methods answers any method; the document must name GET for it, and may name others.
func Diff(r *mux.Router, doc *openapi3.T) []string {
	routes, problems := Routes(r)
	ops := map[string][]string{} // path → methods
	for path, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			ops[path] = append(ops[path], m)
		}
	}
	covered := map[string]bool{} // documented "METHOD path" that some route serves
	for _, rt := range routes {
		var paths []string
		if rt.Prefix {
			for p := range ops {
				if strings.HasPrefix(p, rt.Path) && owner(routes, p) == rt.Path {
					paths = append(paths, p)
				}
			}
			if len(paths) == 0 {
				for _, m := range rt.methodsOrGET() {
					problems = append(problems, fmt.Sprintf("route %s %s* is in the route table but no path under it is in the OpenAPI document", m, rt.Path))
				}
			}
		} else {
			paths = []string{rt.Path}
		}
		for _, p := range paths {
			for _, m := range rt.methodsOrGET() {
				if !slices.Contains(ops[p], m) {
					problems = append(problems, fmt.Sprintf("route %s %s is in the route table but not in the OpenAPI document", m, p))
				}
			}
			for _, m := range ops[p] {
				if rt.Methods == nil || slices.Contains(rt.Methods, m) {
					covered[m+" "+p] = true
				}
			}
		}
	}
	for p, ms := range ops {
		for _, m := range ms {
			if !covered[m+" "+p] {
				problems = append(problems, fmt.Sprintf("the OpenAPI document has %s %s, which no route serves", m, p))
			}
		}
	}
	sort.Strings(problems)
	return problems
}

// owner returns the path of the route that serves a documented path: the route with
// that exact path, else the one with the longest prefix of it.
func owner(routes []Route, path string) string {
	best := ""
	for _, rt := range routes {
		switch {
		case !rt.Prefix && rt.Path == path:
			return path
		case rt.Prefix && strings.HasPrefix(path, rt.Path) && len(rt.Path) > len(best):
			best = rt.Path
		}
	}
	return best
}

// A Route is one entry of a route table.
type Route struct {
	Path    string   // the path template, or the prefix of a PathPrefix route
	Prefix  bool     // registered with PathPrefix
	Methods []string // nil: any method
}

func (r Route) methodsOrGET() []string {
	if r.Methods == nil {
		return []string{http.MethodGet}
	}
	return r.Methods
}

// Routes walks a router and returns its routes, and a problem for each route whose
// path it cannot read.
func Routes(r *mux.Router) ([]Route, []string) {
	var routes []Route
	var problems []string
	_ = r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			problems = append(problems, fmt.Sprintf("a route has no path template: %v", err))
			return nil
		}
		re, err := route.GetPathRegexp()
		if err != nil {
			problems = append(problems, fmt.Sprintf("route %s: %v", tpl, err))
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			methods = nil // no method matcher: any method
		}
		routes = append(routes, Route{Path: tpl, Prefix: !strings.HasSuffix(re, "$"), Methods: methods})
		return nil
	})
	return routes, problems
}

// CheckRoutes fails the test for every difference between the router and the
// document (see Diff).
func CheckRoutes(t testing.TB, r *mux.Router, doc *openapi3.T) {
	t.Helper()
	for _, p := range Diff(r, doc) {
		t.Error(p)
	}
}

// A Validator checks real responses against a document and remembers which
// documented responses it has seen.
type Validator struct {
	t    testing.TB
	doc  *openapi3.T
	mu   sync.Mutex
	seen map[string]bool // "METHOD path status"
}

// NewValidator returns a Validator for doc.
func NewValidator(t testing.TB, doc *openapi3.T) *Validator {
	return &Validator{t: t, doc: doc, seen: map[string]bool{}}
}

// Client returns an HTTP client that sends requests through base (nil: the default
// transport) and checks every response to a documented path against the document, and
// every request the service accepted (a 2xx answer) against the documented request.
func (v *Validator) Client(base http.RoundTripper) *http.Client {
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{Transport: roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := base.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if path, params, ok := v.find(req.URL.Path); ok {
			v.check(req, path, params, resp.StatusCode, resp.Header, body)
		}
		return resp, nil
	})}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// find returns the documented path template that matches a request path, with its
// parameters: a literal path first, else the template with the most literal text.
func (v *Validator) find(reqPath string) (string, map[string]string, bool) {
	if v.doc.Paths.Value(reqPath) != nil {
		return reqPath, nil, true
	}
	best, bestLen := "", -1
	var bestParams map[string]string
	for tpl := range v.doc.Paths.Map() {
		params, ok := matchTemplate(tpl, reqPath)
		if lit := len(paramRE.ReplaceAllString(tpl, "")); ok && lit > bestLen {
			best, bestLen, bestParams = tpl, lit, params
		}
	}
	return best, bestParams, bestLen >= 0
}

var paramRE = regexp.MustCompile(`\{[^}/]+\}`)

// matchTemplate matches a path against an OpenAPI path template, each parameter
// standing for one non-empty path segment or part of one.
func matchTemplate(tpl, path string) (map[string]string, bool) {
	var re strings.Builder
	re.WriteString("^")
	var names []string
	last := 0
	for _, loc := range paramRE.FindAllStringIndex(tpl, -1) {
		re.WriteString(regexp.QuoteMeta(tpl[last:loc[0]]))
		re.WriteString("([^/]+?)")
		names = append(names, tpl[loc[0]+1:loc[1]-1])
		last = loc[1]
	}
	if len(names) == 0 {
		return nil, false
	}
	re.WriteString(regexp.QuoteMeta(tpl[last:]) + "$")
	m := regexp.MustCompile(re.String()).FindStringSubmatch(path)
	if m == nil {
		return nil, false
	}
	params := map[string]string{}
	for i, n := range names {
		params[n] = m[i+1]
	}
	return params, true
}

// check validates one response to method on the documented path: its status must be
// documented for the operation, and its headers and body must match.
func (v *Validator) check(req *http.Request, path string, params map[string]string, status int, header http.Header, body []byte) {
	v.t.Helper()
	item := v.doc.Paths.Value(path)
	op := item.GetOperation(req.Method)
	if op == nil {
		if status != http.StatusMethodNotAllowed {
			v.t.Errorf("%s %s: status %d, but the OpenAPI document has no %s operation on %s", req.Method, req.URL.Path, status, req.Method, path)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: params,
			Route:      &routers.Route{Spec: v.doc, Path: path, PathItem: item, Method: req.Method, Operation: op},
		},
		Status:  status,
		Header:  header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		v.t.Errorf("%s %s: the %d response does not match the OpenAPI document: %v\nbody: %.600s", req.Method, req.URL.Path, status, err, body)
	}
	if status/100 == 2 {
		// The service accepted the request, so the document must accept it too.
		if req.GetBody != nil {
			rb, err := req.GetBody()
			if err != nil {
				v.t.Fatal(err)
			}
			req = req.Clone(req.Context())
			req.Body = rb
		}
		rin := in.RequestValidationInput
		rin.Request = req
		rin.Options = &openapi3filter.Options{MultiError: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
		if err := openapi3filter.ValidateRequest(context.Background(), rin); err != nil {
			v.t.Errorf("%s %s: a request the service accepted does not match the OpenAPI document: %v", req.Method, req.URL.Path, err)
		}
	}
	v.mu.Lock()
	v.seen[fmt.Sprintf("%s %s %d", req.Method, path, status)] = true
	v.mu.Unlock()
}

// RequireSeen fails the test for each "METHOD path status" it has not checked.
func (v *Validator) RequireSeen(want ...string) {
	v.t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, w := range want {
		if !v.seen[w] {
			v.t.Errorf("no %s response was checked against the OpenAPI document", w)
		}
	}
}
