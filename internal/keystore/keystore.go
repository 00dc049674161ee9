// Package keystore holds the secrets of a DTA or an auth server — a master share, a
// signing key, the server key sQ — behind one small interface, with two backends:
// an encrypted file (the default) and HashiCorp Vault (KV version 2).
//
// Security invariants: a secret leaves a Keystore only as the return value of Get;
// no error, log line or metric ever contains one. Errors name the secret (and the
// file or Vault path), never its value.
//
// Secret names are restricted to [a-z0-9._-], at most 128 characters, starting with
// a letter or a digit (so no path separators, no "..", no hidden files); both
// backends reject other names with an error wrapping ErrInvalidName.
package keystore

import (
	"context"
	"errors"
	"fmt"
)

// A Keystore stores named secrets. Implementations are safe for concurrent use.
type Keystore interface {
	// Get returns the current value of the secret name, or an error wrapping ErrNotFound.
	Get(ctx context.Context, name string) ([]byte, error)
	// Put creates or replaces the secret name. An empty secret is refused.
	Put(ctx context.Context, name string, secret []byte) error
	// Delete erases the secret name and every earlier version of it the backend
	// keeps. Deleting a secret that does not exist is not an error.
	Delete(ctx context.Context, name string) error
}

// ErrNotFound reports a secret that does not exist.
var ErrNotFound = errors.New("keystore: secret not found")

// ErrInvalidName reports a secret name outside the allowed character set.
var ErrInvalidName = errors.New("keystore: invalid secret name")

// maxNameLen bounds a secret name (a file name or the last segment of a Vault path).
const maxNameLen = 128

// checkName returns nil if name is a valid secret name. The error quotes the name:
// names are identifiers chosen by the operator, not secrets.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty (allowed: a-z 0-9 . _ -, not starting with . _ -)", ErrInvalidName)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("%w: longer than %d characters", ErrInvalidName, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("%w: %q (allowed: a-z 0-9 . _ -, not starting with . _ -)", ErrInvalidName, name)
		}
	}
	return nil
}
