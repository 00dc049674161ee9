package client

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// A Storage holds a client's named files: BundleFile, FingerprintFile, TokenFile and
// the few others this package writes (PendingFile, BundlePreviousFile,
// BundleCheckFile). Open and Bootstrap use a directory; OpenStorage and
// BootstrapStorage take any Storage, e.g. a browser's IndexedDB.
//
// TokenFile and PendingFile hold the client's secrets (the token, which is a device's
// whole key, and the X25519 key its shares are sealed to): keep them where only the
// client can read them.
type Storage interface {
	// Load returns the content of the named file, or an error wrapping
	// fs.ErrNotExist when there is none.
	Load(name string) ([]byte, error)
	// Store replaces the named file with data, atomically: a later Load returns
	// either the old or the new content, never a mix, even after a crash.
	Store(name string, data []byte) error
	// Remove deletes the named file; one that does not exist is no error.
	Remove(name string) error
}

// describe names file name of st in errors: its path for a directory.
func describe(st Storage, name string) string {
	if d, ok := st.(dirStorage); ok {
		return filepath.Join(string(d), name)
	}
	return name
}

// where names st in errors: the directory, or "the client's storage".
func where(st Storage) string {
	if d, ok := st.(dirStorage); ok {
		return string(d)
	}
	return "the client's storage"
}

// dirStorage is a client directory. Files are written atomically (temporary file,
// fsync, rename, directory fsync); TokenFile and PendingFile with mode 0600, the
// others 0644. Those two are refused at load when group or others can read them (or
// when they are not regular files: a symlink is not followed).
type dirStorage string

// secretFiles are written with mode 0600 and loaded only with it.
var secretFiles = map[string]bool{TokenFile: true, PendingFile: true}

func (d dirStorage) Load(name string) ([]byte, error) {
	p := filepath.Join(string(d), name)
	if !secretFiles[name] {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		return b, nil
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("client: %s is not a regular file", p)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w (%s has mode %v)", ErrTokenFileMode, p, fi.Mode().Perm())
	}
	if fi.Size() > maxTokenFile {
		return nil, fmt.Errorf("client: %s is too large", p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return b, nil
}

func (d dirStorage) Store(name string, data []byte) error {
	perm := fs.FileMode(0o644)
	if secretFiles[name] {
		perm = 0o600
	}
	return writeFileAtomic(string(d), name, data, perm)
}

func (d dirStorage) Remove(name string) error {
	if err := os.Remove(filepath.Join(string(d), name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("client: %w", err)
	}
	return syncDir(string(d))
}

// removeFiles removes the named files of st (those absent are no error).
func removeFiles(st Storage, names ...string) error {
	for _, n := range names {
		if err := st.Remove(n); err != nil {
			return err
		}
	}
	return nil
}

// loadFile reads a file of st, returning nil, nil when it does not exist.
func loadFile(st Storage, name string) ([]byte, error) {
	b, err := st.Load(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}
