//go:build js && wasm

// Command polyroot-wasm is the polyroot client for a browser page, in WebAssembly:
// it sets globalThis.polyroot (internal/wasmclient) and keeps running.
//
//	make build    # bin/polyroot.wasm, with the flags of internal/wasmclient.BuildArgs
package main

import "github.com/polyroot/polyroot/internal/wasmclient"

func main() {
	wasmclient.Register()
	select {}
}
