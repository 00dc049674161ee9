//go:build js && wasm

package wasmclient

import (
	"context"
	"fmt"
	"io/fs"
	"syscall/js"

	"github.com/polyroot/polyroot/internal/jsawait"
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

// await waits for p (jsawait.Await, without a deadline).
func await(p js.Value) (js.Value, error) { return jsawait.Await(context.Background(), p, nil) }
