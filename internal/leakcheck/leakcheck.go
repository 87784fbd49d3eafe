// Package leakcheck searches a folder for secrets, for tests that prove
// that no password reaches a file a run leaves behind.
package leakcheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Find reads every regular file under root (links are not followed) and
// returns the files holding one of secrets (empty secrets are ignored) and
// how many files it read.
func Find(root string, secrets ...string) (hits []string, files int, err error) {
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		files++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(string(b), s) {
				hits = append(hits, p)
				break
			}
		}
		return nil
	})
	return hits, files, err
}
