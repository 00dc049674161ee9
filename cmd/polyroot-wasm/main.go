//go:build js && wasm

// Command polyroot-wasm is the polyroot client for a browser page, in WebAssembly:
// it sets globalThis.polyroot (internal/wasmclient) and keeps running.
//
//	GOOS=js GOARCH=wasm go build -trimpath -ldflags='-s -w' -o bin/polyroot.wasm ./cmd/polyroot-wasm
package main

import "github.com/polyroot/polyroot/internal/wasmclient"

func main() {
	wasmclient.Register()
	select {}
}
