//go:build js && wasm

// Package jsawait waits, from Go compiled to WebAssembly, for a JavaScript promise:
// the browser client's fetch transport and its storage both need it. Call Await from a
// goroutine other than the one JavaScript called into, or the event loop that settles
// the promise never runs.
package jsawait

import (
	"context"
	"errors"
	"syscall/js"
)

// Await waits for p to settle and returns its value, or its rejection's message as an
// error; a p that is not a promise is its own value. When ctx ends first, Await calls
// abort (which must make p settle, e.g. an AbortController's abort) and waits for
// that; with a nil abort it does not watch ctx.
func Await(ctx context.Context, p js.Value, abort func()) (js.Value, error) {
	if p.Type() != js.TypeObject || p.Get("then").Type() != js.TypeFunction {
		return p, nil
	}
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 2)
	ok := js.FuncOf(func(_ js.Value, args []js.Value) any {
		v := js.Undefined()
		if len(args) > 0 {
			v = args[0]
		}
		ch <- result{v: v}
		return nil
	})
	fail := js.FuncOf(func(_ js.Value, args []js.Value) any {
		msg := "rejected"
		if len(args) > 0 && args[0].Type() == js.TypeObject && args[0].Get("message").Type() == js.TypeString {
			msg = args[0].Get("message").String()
		}
		ch <- result{err: errors.New(msg)}
		return nil
	})
	defer ok.Release()
	defer fail.Release()
	p.Call("then", ok, fail)
	if abort == nil {
		r := <-ch
		return r.v, r.err
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		abort()
		<-ch // the promise settles (rejected) before its callbacks are released
		return js.Undefined(), ctx.Err()
	}
}
