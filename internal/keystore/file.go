package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"filippo.io/age"
)

// PassphraseEnv is the environment variable that conventionally holds the passphrase
// of a File keystore (see PassphraseFromEnv).
const PassphraseEnv = "POLYROOT_KEYSTORE_PASSPHRASE"

// ErrCorrupt reports a secret file that is not a valid age file or whose content
// fails authentication (truncated, modified).
var ErrCorrupt = errors.New("keystore: secret file corrupted")

// ErrWrongPassphrase reports a secret file that the keystore's passphrase does not
// decrypt (or that was not encrypted with a passphrase at all).
var ErrWrongPassphrase = errors.New("keystore: wrong passphrase")

const (
	// DefaultScryptWorkFactor is age's default scrypt work factor (log2 N = 18: about
	// a second and 256 MiB of memory per Get or Put on a server core).
	DefaultScryptWorkFactor = 18

	// minMaxWorkFactor is the highest work factor a File accepts when decrypting, at
	// least (age's default cap); raised to the configured factor when that is higher.
	minMaxWorkFactor = 22

	// fileExt is appended to a secret's name to get its file name.
	fileExt = ".age"

	// maxFileSize bounds what Get reads: secrets are keys, not documents.
	maxFileSize = 1 << 20
)

// File is the embedded default Keystore: a directory with one file per secret,
// <dir>/<name>.age, each encrypted with age to a passphrase (scrypt, memory-hard).
//
// Files are written atomically (a temporary file in the same directory, fsync,
// rename, fsync of the directory) with mode 0600; the directory is created with mode
// 0700. A directory or a secret file that the group or others can access is refused
// with an error naming the path and its mode. An interrupted Put can leave a
// temporary file ".<name>.tmp-*" behind; it is encrypted like the secret files and
// never read.
//
// File has no mutable state and is safe for concurrent use; concurrent Puts of one
// name leave one of the values, whole. A File never prints its passphrase: String
// and GoString show only the directory.
type File struct {
	dir        string
	passphrase string
	workFactor int
}

// A FileOption configures OpenFile.
type FileOption func(*File) error

// WithScryptWorkFactor sets the scrypt work factor (log2 of scrypt's N, 1 to 30) used
// by Put; the default is DefaultScryptWorkFactor. Each step doubles the time and the
// memory an attacker needs per guessed passphrase — and what Get and Put cost here.
// Values far below the default are for tests only.
func WithScryptWorkFactor(logN int) FileOption {
	return func(f *File) error {
		if logN < 1 || logN > 30 {
			return fmt.Errorf("keystore: scrypt work factor %d out of range 1..30", logN)
		}
		f.workFactor = logN
		return nil
	}
}

// OpenFile opens the file keystore in dir, creating dir (mode 0700) if it does not
// exist. The passphrase must not be empty; OpenFile copies it, so the caller may
// clear its slice afterwards. It fails if dir is not a directory or if its mode lets
// the group or others in.
func OpenFile(dir string, passphrase []byte, opts ...FileOption) (*File, error) {
	if dir == "" {
		return nil, errors.New("keystore: empty directory path")
	}
	if len(passphrase) == 0 {
		return nil, errors.New("keystore: empty passphrase")
	}
	f := &File{dir: filepath.Clean(dir), passphrase: string(passphrase), workFactor: DefaultScryptWorkFactor}
	for _, opt := range opts {
		if err := opt(f); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return nil, fmt.Errorf("keystore: create directory: %w", err)
	}
	if err := f.checkDir(); err != nil {
		return nil, err
	}
	return f, nil
}

// FileHolds reports whether the file keystore in dir holds a secret named name,
// without the passphrase: `serve --check-config` checks that the keys are in place
// before anyone has to type it. It fails, as OpenFile does, on a missing directory or
// one the group or others can access; it does not create the directory.
func FileHolds(dir, name string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	f := &File{dir: filepath.Clean(dir)}
	if err := f.checkDir(); err != nil {
		return false, err
	}
	_, err := os.Lstat(f.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Dir returns the keystore's directory.
func (f *File) Dir() string { return f.dir }

// String describes the keystore without its passphrase.
func (f File) String() string { return "keystore.File(" + f.dir + ")" }

// GoString is String, so that %#v does not print the passphrase either.
func (f File) GoString() string { return f.String() }

// Get decrypts and returns the secret name. It returns an error wrapping ErrNotFound
// if there is no such secret, ErrWrongPassphrase if the passphrase does not open it,
// and refuses a file (or directory) that the group or others can access.
func (f *File) Get(ctx context.Context, name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := f.checkDir(); err != nil {
		return nil, err
	}
	path := f.path(name)
	ciphertext, err := readPrivateFile(path)
	if err != nil {
		return nil, err
	}
	id, err := age.NewScryptIdentity(f.passphrase)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	id.SetMaxWorkFactor(max(minMaxWorkFactor, f.workFactor))
	// age's own messages may quote the start of a malformed file — which could be a
	// secret stored in clear by mistake — so they are replaced by fixed ones.
	r, err := age.Decrypt(bytes.NewReader(ciphertext), id)
	switch {
	case errors.Is(err, age.ErrIncorrectIdentity):
		return nil, fmt.Errorf("keystore: decrypt %s: %w", path, ErrWrongPassphrase)
	case err != nil && strings.Contains(err.Error(), "work factor too large"):
		return nil, fmt.Errorf("keystore: decrypt %s: its scrypt work factor is above %d, the highest this keystore accepts (see WithScryptWorkFactor)",
			path, max(minMaxWorkFactor, f.workFactor))
	case err != nil:
		return nil, fmt.Errorf("keystore: decrypt %s: %w: not a passphrase-encrypted age file, or its header is damaged", path, ErrCorrupt)
	}
	secret, err := io.ReadAll(r)
	if err != nil {
		// age authenticates every chunk: a modified or truncated file ends here.
		return nil, fmt.Errorf("keystore: decrypt %s: %w: the encrypted payload fails authentication (truncated or modified)", path, ErrCorrupt)
	}
	return secret, nil
}

// Put encrypts secret and replaces the file of name atomically.
func (f *File) Put(ctx context.Context, name string, secret []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	if len(secret) == 0 {
		return fmt.Errorf("keystore: put %s: empty secret", name)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.checkDir(); err != nil {
		return err
	}
	rcpt, err := age.NewScryptRecipient(f.passphrase)
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	rcpt.SetWorkFactor(f.workFactor)
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rcpt)
	if err != nil {
		return fmt.Errorf("keystore: encrypt %s: %w", name, err)
	}
	if _, err := w.Write(secret); err != nil {
		return fmt.Errorf("keystore: encrypt %s: %w", name, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("keystore: encrypt %s: %w", name, err)
	}
	return writeAtomic(f.dir, name+fileExt, buf.Bytes())
}

// Delete removes the file of name and syncs the directory. A missing file is not an
// error. The file held only ciphertext; the filesystem may keep its blocks until they
// are reused, as with any file Put replaces.
func (f *File) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.checkDir(); err != nil {
		return err
	}
	if err := os.Remove(f.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keystore: delete %s: %w", name, err)
	}
	d, err := os.Open(f.dir)
	if err != nil {
		return fmt.Errorf("keystore: open directory %s for sync: %w", f.dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("keystore: sync directory %s: %w", f.dir, err)
	}
	return nil
}

func (f *File) path(name string) string { return filepath.Join(f.dir, name+fileExt) }

// checkDir verifies that the keystore directory exists, is a directory (a symbolic
// link to one is followed) and is closed to the group and others.
func (f *File) checkDir() error {
	fi, err := os.Stat(f.dir)
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("keystore: %s is not a directory", f.dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("keystore: directory %s has mode %04o: the group or others can access it (want 0700: chmod 700 %s)",
			f.dir, perm, f.dir)
	}
	return nil
}

// readPrivateFile reads the regular file at path after checking, on the open file,
// that neither the group nor others can access it. A missing file gives ErrNotFound.
func readPrivateFile(path string) ([]byte, error) {
	// O_NOFOLLOW refuses a symbolic link at open time, atomically; every other check is
	// on the opened file, so a concurrent Put (an atomic rename) gives the old or the
	// new secret, never an error.
	fh, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("keystore: %s: %w", path, ErrNotFound)
	case errors.Is(err, syscall.ELOOP):
		return nil, fmt.Errorf("keystore: %s is a symbolic link; refusing it", path)
	case err != nil:
		return nil, fmt.Errorf("keystore: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keystore: %s is not a regular file (mode %s)", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("keystore: secret file %s has mode %04o: the group or others can access it (want 0600: chmod 600 %s)",
			path, perm, path)
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("keystore: secret file %s is larger than %d bytes", path, maxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("keystore: read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("keystore: secret file %s is larger than %d bytes", path, maxFileSize)
	}
	return data, nil
}

// writeAtomic replaces dir/base with data: it writes a temporary file in dir with
// mode 0600, syncs it, renames it over dir/base and syncs dir, so that after a crash
// the file holds either the old or the new content, never a mix.
func writeAtomic(dir, base string, data []byte) error {
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("keystore: create temporary file: %w", err)
	}
	tmpName := tmp.Name()
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	// CreateTemp already uses 0600; set it explicitly so the mode never depends on it.
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("keystore: chmod %s: %w", tmpName, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("keystore: write %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("keystore: sync %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keystore: close %s: %w", tmpName, err)
	}
	final := filepath.Join(dir, base)
	if err := os.Rename(tmpName, final); err != nil {
		return fmt.Errorf("keystore: rename to %s: %w", final, err)
	}
	renamed = true
	// The new file is in place; syncing the directory makes the rename durable.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("keystore: open directory %s for sync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("keystore: sync directory %s: %w", dir, err)
	}
	return nil
}
