//go:build js && wasm

package wasmclient

import (
	"fmt"
	"io/fs"
	"syscall/js"
)

// jsStorage is a client.Storage in globalThis.polyrootStore, under prefix (the auth
// server's origin and a slash). The page encrypts what it keeps. Its methods wait for
// promises: call them from a goroutine, never on the event loop's.
type jsStorage struct {
	prefix string
}

func store() (js.Value, error) {
	s := js.Global().Get("polyrootStore")
	if s.Type() != js.TypeObject {
		return js.Undefined(), fmt.Errorf("wasmclient: globalThis.polyrootStore is not defined")
	}
	return s, nil
}

// Load returns the named file; null, undefined and an empty array are absent.
func (s jsStorage) Load(name string) ([]byte, error) {
	st, err := store()
	if err != nil {
		return nil, err
	}
	v, err := await(st.Call("get", s.prefix+name))
	if err != nil {
		return nil, fmt.Errorf("wasmclient: reading %s: %w", name, err)
	}
	if v.IsNull() || v.IsUndefined() || v.Get("length").Int() == 0 {
		return nil, fmt.Errorf("wasmclient: %s: %w", name, fs.ErrNotExist)
	}
	b := make([]byte, v.Get("length").Int())
	js.CopyBytesToGo(b, v)
	return b, nil
}

// Store puts data under the name; the page's put replaces it in one IndexedDB
// transaction, which is atomic.
func (s jsStorage) Store(name string, data []byte) error {
	st, err := store()
	if err != nil {
		return err
	}
	arr := js.Global().Get("Uint8Array").New(len(data))
	js.CopyBytesToJS(arr, data)
	if _, err := await(st.Call("put", s.prefix+name, arr)); err != nil {
		return fmt.Errorf("wasmclient: storing %s: %w", name, err)
	}
	return nil
}

// Remove puts an empty array under the name (the store has no delete).
func (s jsStorage) Remove(name string) error {
	return s.Store(name, nil)
}

// await waits for promise p and returns its value, or its rejection as an error.
func await(p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	if p.Type() != js.TypeObject || p.Get("then").Type() != js.TypeFunction {
		return p, nil // a plain value
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
		ch <- result{err: fmt.Errorf("%s", msg)}
		return nil
	})
	defer ok.Release()
	defer fail.Release()
	p.Call("then", ok, fail)
	r := <-ch
	return r.v, r.err
}
