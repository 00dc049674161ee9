// Package browsertest holds the browser tests of the login pages (issue 15): a real
// headless Chromium, driven with github.com/chromedp/chromedp, runs the polyroot client
// compiled to WebAssembly in the pages of internal/webui, against real DTAs
// (internal/testdomain) and a real auth server (package server) on loopback.
//
// The package has no code outside its tests. Its helpers start the whole stack
// (StartStack), build the WebAssembly client once per test binary (wasmDir) and open a
// fresh browser profile per test (newBrowser). The tests skip under plain `go test`
// when Chromium is missing and fail under `make test` (internal/testbin.Chromium).
package browsertest
