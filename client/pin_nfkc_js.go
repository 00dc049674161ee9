//go:build js && wasm

package client

import (
	"fmt"
	"syscall/js"
)

// nfkc returns a new slice with the Unicode NFKC form of the UTF-8 text pin, made by
// the browser's String.prototype.normalize: golang.org/x/text's tables would add
// about a tenth to the WebAssembly module. The browser's Unicode version may be newer
// than x/text's; the two differ only on characters assigned since, which no PIN pad
// offers. The arrays that held the PIN are zeroed (JavaScript strings cannot be).
func nfkc(pin []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("client: normalising the PIN failed in the browser")
		}
	}()
	g := js.Global()
	in := g.Get("Uint8Array").New(len(pin))
	js.CopyBytesToJS(in, pin)
	s := g.Get("TextDecoder").New("utf-8", map[string]any{"fatal": true}).Call("decode", in)
	in.Call("fill", 0)
	// s is a primitive string: call String.prototype.normalize on it.
	n := g.Get("String").Get("prototype").Get("normalize").Call("call", s, "NFKC")
	enc := g.Get("TextEncoder").New().Call("encode", n)
	out = make([]byte, enc.Get("length").Int())
	js.CopyBytesToGo(out, enc)
	enc.Call("fill", 0)
	return out, nil
}
