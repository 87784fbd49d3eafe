package local

import (
	"errors"
	"fmt"
	"github.com/strongcheck/strongcheck/internal/usererr"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Errors a user can cause or meet on an unprepared machine. The CLI maps
// them to exit codes and install hints.
var (
	ErrNotRoot        = errors.New("the local backend needs root (network namespaces, nftables)")
	ErrNoBinaries     = errors.New("PostgreSQL server binaries not found")
	ErrNoTool         = errors.New("required tool missing")
	ErrSubnetInUse    = errors.New("subnet already in use")
	ErrAlreadyUp      = errors.New("a cluster is already up in this folder")
	ErrNodeStart      = errors.New("node did not start")
	ErrNotTraversable = errors.New("folder not reachable by the postgres user")
	// ErrNoCluster: the folder given holds no cluster that is up (the
	// user's --dir, usererr).
	ErrNoCluster = usererr.Sentinel("no cluster")
)

// Binaries are the PostgreSQL programs the backend runs.
type Binaries struct {
	Dir     string // the bindir
	Version string // e.g. "15.18"
	Major   int
}

// Path returns the full path of a program in the bindir.
func (b Binaries) Path(prog string) string { return filepath.Join(b.Dir, prog) }

var neededPrograms = []string{"postgres", "initdb", "pg_rewind", "pg_controldata"}

// FindBinaries locates the server binaries: STRONGCHECK_PG_BINDIR when set,
// else `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin. It
// fails with ErrNoBinaries naming what it tried.
func FindBinaries() (Binaries, error) {
	var tried []string
	var cands []string
	if d := os.Getenv("STRONGCHECK_PG_BINDIR"); d != "" {
		cands = append(cands, d)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		cands = append(cands, strings.TrimSpace(string(out)))
	}
	globbed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(globbed, func(i, j int) bool { return versionOf(globbed[i]) > versionOf(globbed[j]) })
	cands = append(cands, globbed...)
	for _, d := range cands {
		tried = append(tried, d)
		ok := true
		for _, p := range neededPrograms {
			if _, err := os.Stat(filepath.Join(d, p)); err != nil {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		out, err := exec.Command(filepath.Join(d, "postgres"), "--version").Output()
		if err != nil {
			continue
		}
		v, major, err := parseVersion(string(out))
		if err != nil {
			tried[len(tried)-1] += fmt.Sprintf(" (%v)", err)
			continue
		}
		return Binaries{Dir: d, Version: v, Major: major}, nil
	}
	if len(tried) == 0 {
		tried = []string{"pg_config (not on PATH)", "/usr/lib/postgresql/*/bin (none)"}
	}
	return Binaries{}, fmt.Errorf("%w (looked in %s); install them with `apt-get install postgresql-15` or set STRONGCHECK_PG_BINDIR",
		ErrNoBinaries, strings.Join(tried, ", "))
}

// versionRE finds the version in `postgres --version`'s output, e.g.
// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" or
// "postgres (PostgreSQL) 17beta1": the first word after "(PostgreSQL)".
var versionRE = regexp.MustCompile(`\(PostgreSQL\)\s+(([0-9]+)(?:\.[0-9]+)*(?:devel|alpha[0-9]*|beta[0-9]*|rc[0-9]*)?)(?:\s|$)`)

// parseVersion returns the server version ("15.18") and its major number
// from the output of `postgres --version`; a packager's suffix in
// parentheses is not part of it.
func parseVersion(out string) (version string, major int, err error) {
	m := versionRE.FindStringSubmatch(strings.TrimSpace(out))
	if m == nil {
		return "", 0, fmt.Errorf("cannot read a version in %q", strings.TrimSpace(out))
	}
	major, err = strconv.Atoi(m[2])
	if err != nil {
		return "", 0, fmt.Errorf("version %q: %w", m[1], err)
	}
	return m[1], major, nil
}

func versionOf(bindir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bindir)))
	return v
}

// Preflight checks what the local backend needs: root, ip, nsenter, nft and
// the postgres user. Each missing piece is named.
func Preflight() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: run as root (e.g. sudo)", ErrNotRoot)
	}
	var missing []string
	for _, t := range []struct{ bin, pkg string }{{"ip", "iproute2"}, {"nsenter", "util-linux"}, {"nft", "nftables"}} {
		if _, err := exec.LookPath(t.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (apt-get install %s)", t.bin, t.pkg))
		}
	}
	if _, err := user.Lookup("postgres"); err != nil {
		missing = append(missing, "user postgres (apt-get install postgresql-15 creates it)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrNoTool, strings.Join(missing, ", "))
	}
	return nil
}

// pgUser is the unprivileged account the servers run as.
type pgUser struct{ uid, gid uint32 }

func lookupPGUser() (pgUser, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return pgUser{}, fmt.Errorf("%w: user postgres: %w", ErrNoTool, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return pgUser{uint32(uid), uint32(gid)}, nil
}

// checkTraversable fails when the postgres user could not reach dir (some
// parent lacks the x bit for others and is not owned by postgres).
func checkTraversable(dir string, u pgUser) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%w: %s is mode %v; the servers run as postgres and need to reach %s (chmod o+x %s)",
				ErrNotTraversable, p, fi.Mode().Perm(), abs, p)
		}
		if p == "/" {
			return nil
		}
	}
}
