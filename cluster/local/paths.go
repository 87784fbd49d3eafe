package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// Where a cluster's files live. The cluster folder (Options.Dir) holds only
// what a report may show: the nodes' logs and cluster.json. What must stay
// private lives in folders of the backend's own, named by the cluster's id,
// 0700 and owned by postgres, whatever the mode of the cluster folder or the
// store around it:
//
//	RegistryDir/<id>/   the runtime folder: secrets.json (the passwords,
//	                    root only) and pgpass (the servers' passfile)
//	DataDir/<id>/<node> the servers' data folders
//
// Both are removed by Close and Down, and by Sweep after a crash (their
// paths are in the registry entry); a cluster left up on purpose keeps them
// until `strongcheck cluster down`.

// DataDir holds one folder per cluster with its nodes' data folders. It is
// on disk (not tmpfs): the servers' fsyncs must cost what they cost.
var DataDir = "/var/lib/strongcheck"

var idRE = regexp.MustCompile(`^[0-9a-f]{6}$`)

// validID reports whether id has the form register gives ids (three random
// bytes in hex), so that no path built from an id read back from a file can
// leave the backend's folders.
func validID(id string) bool { return idRE.MatchString(id) }

func runtimeDir(id string) string { return filepath.Join(RegistryDir, id) }
func dataRoot(id string) string   { return filepath.Join(DataDir, id) }

// makePrivateDirs creates the runtime folder and the data folder of cluster
// id, each 0700 and owned by u. The registry folder becomes 0711: postgres
// may pass through it to its runtime folder but not list it.
func makePrivateDirs(id string, u pgUser) error {
	if !validID(id) {
		return fmt.Errorf("cluster id %q", id)
	}
	for _, p := range []struct {
		parent string
		mode   os.FileMode
	}{{RegistryDir, 0o711}, {DataDir, 0o755}} {
		if err := os.MkdirAll(p.parent, p.mode); err != nil {
			return fmt.Errorf("private folders: %w", err)
		}
		if err := os.Chmod(p.parent, p.mode); err != nil {
			return fmt.Errorf("private folders: %w", err)
		}
	}
	for _, d := range []string{runtimeDir(id), dataRoot(id)} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("private folders: %w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("private folders: %w", err)
		}
		if err := os.Chown(d, int(u.uid), int(u.gid)); err != nil {
			return fmt.Errorf("private folders: %w", err)
		}
	}
	return checkTraversable(dataRoot(id), u)
}

// removePrivateDirs removes the runtime and data folders of cluster id.
func removePrivateDirs(id string) error {
	if !validID(id) {
		return nil
	}
	var errs []error
	for _, d := range []string{runtimeDir(id), dataRoot(id)} {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// orphanPrivateDirs lists the ids of runtime and data folders that no
// registry entry owns (left by a cluster whose entry is gone, e.g. after a
// reboot emptied /run). Call it under the registry lock.
func orphanPrivateDirs() []string {
	seen := map[string]bool{}
	var out []string
	for _, parent := range []string{RegistryDir, DataDir} {
		ents, _ := os.ReadDir(parent)
		for _, e := range ents {
			id := e.Name()
			if !e.IsDir() || !validID(id) || seen[id] {
				continue
			}
			seen[id] = true
			if _, err := os.Stat(entryPath(id)); errors.Is(err, os.ErrNotExist) {
				out = append(out, id)
			}
		}
	}
	return out
}
