package wasmclient

// gcflags turn inlining off except in the cryptography (circl, crypto/..., pairing)
// and math/... (math/bits is plain functions in WebAssembly: without inlining them a
// login takes three times the CPU). Everywhere else inlining only grows the
// WebAssembly: 91 KB gzipped (6%) on 2026-12-06, against a budget of 1.5 MB.
var gcflags = []string{"-gcflags=all=-l", "-gcflags=github.com/cloudflare/circl/...=",
	"-gcflags=crypto/...=", "-gcflags=github.com/polyroot/polyroot/pairing=", "-gcflags=math/...="}

// BuildArgs returns the arguments of GOOS=js GOARCH=wasm go build for the shipped
// browser client, written to out: the flags of make build and of the deploy image
// (TestBuildFlagsShipped holds them to these), for the tests that measure its size
// and speed.
func BuildArgs(out string) []string {
	args := append([]string{"build", "-trimpath", "-ldflags=-s -w"}, gcflags...)
	return append(args, "-o", out, "github.com/polyroot/polyroot/cmd/polyroot-wasm")
}
