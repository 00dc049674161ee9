package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxSecretFile bounds a secret read from a NAME_FILE file.
const maxSecretFile = 4 << 10

// secretEnv returns the secret in the environment variable name or, when name is not
// set, in the file that name_FILE names (a systemd credential, %d/…, or a mounted
// secret): a file only its owner can read, whose one trailing newline is dropped.
// Secrets never come from flags (ps shows them) or the configuration file. It returns
// "" without error when neither is set; setting both is an error (an empty name_FILE
// beside name counts as unset).
func secretEnv(name string) (string, error) {
	v, set := os.LookupEnv(name)
	path, fileSet := os.LookupEnv(name + "_FILE")
	switch {
	case set && fileSet && path != "":
		return "", fmt.Errorf("both %s and %s_FILE are set: use one", name, name)
	case !fileSet || set: // an empty NAME_FILE beside NAME: unset, as `NAME_FILE= cmd` means
		return v, nil
	case path == "":
		return "", fmt.Errorf("%s_FILE is empty: it must name the file holding %s", name, name)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s_FILE: %s must be a regular file that only its owner can read (mode 0600 or 0400), not %v", name, path, fi.Mode())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s_FILE: %s is larger than %d bytes", name, path, maxSecretFile)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", errors.New(name + "_FILE: " + path + " is empty")
	}
	return s, nil
}
