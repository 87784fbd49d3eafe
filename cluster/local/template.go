package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// TemplateDir caches one initdb'd, cleanly shut down data directory per
// PostgreSQL version. A cluster's nodes start from copies of it: initdb costs
// more than half a second here, a copy a few milliseconds, and a copy of a
// cleanly stopped cluster is a valid base for a standby (same system
// identifier, same timeline, the WAL since its checkpoint streams from the
// primary).
var TemplateDir = "/var/cache/strongcheck/templates"

// initdbArgs fix how the template is made; they are part of its cache key.
var initdbArgs = []string{"-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-N", "--no-instructions", "-E", "UTF8", "--locale=C"}

type template struct {
	dir      string // the data directory to copy
	password string // its superuser password (root-only file beside it)
}

// ensureTemplate returns the cached template, creating it under a lock when
// missing.
func ensureTemplate(ctx context.Context, bin Binaries, u pgUser) (template, error) {
	h := sha256.Sum256([]byte(bin.Dir + "\x00" + bin.Version + "\x00" + strings.Join(initdbArgs, " ")))
	base := filepath.Join(TemplateDir, "pg"+bin.Version+"-"+hex.EncodeToString(h[:6]))
	t := template{dir: filepath.Join(base, "data")}
	if err := os.MkdirAll(TemplateDir, 0o755); err != nil {
		return t, fmt.Errorf("template cache: %w", err)
	}
	if err := os.Chmod(filepath.Dir(TemplateDir), 0o755); err != nil {
		return t, fmt.Errorf("template cache: %w", err)
	}
	lock, err := os.OpenFile(base+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return t, fmt.Errorf("template cache: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return t, fmt.Errorf("template cache lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	pwPath := base + ".secret"
	if pw, err := os.ReadFile(pwPath); err == nil {
		if _, err := os.Stat(filepath.Join(t.dir, "PG_VERSION")); err == nil {
			t.password = strings.TrimSpace(string(pw))
			return t, nil
		}
	}
	os.RemoveAll(base)
	tmp := base + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return t, fmt.Errorf("template cache: %w", err)
	}
	if err := os.Chown(tmp, int(u.uid), int(u.gid)); err != nil {
		return t, fmt.Errorf("template cache: %w", err)
	}
	pw := randomHex(16)
	pwfile := filepath.Join(tmp, "pwfile")
	if err := os.WriteFile(pwfile, []byte(pw+"\n"), 0o600); err != nil {
		return t, err
	}
	if err := os.Chown(pwfile, int(u.uid), int(u.gid)); err != nil {
		return t, err
	}
	args := append([]string{"-D", filepath.Join(tmp, "data"), "--pwfile=" + pwfile}, initdbArgs...)
	cmd := exec.CommandContext(ctx, bin.Path("initdb"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.uid, Gid: u.gid}}
	cmd.Env = []string{"LANG=C", "LC_ALL=C", "PATH=/usr/bin:/bin"}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	os.Remove(pwfile)
	if err != nil {
		return t, fmt.Errorf("initdb: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if err := os.WriteFile(pwPath, []byte(pw+"\n"), 0o600); err != nil {
		return t, err
	}
	if err := os.Rename(tmp, base); err != nil {
		return t, fmt.Errorf("template cache: %w", err)
	}
	t.password = pw
	return t, nil
}

// copyDir copies a data directory preserving owner and modes.
func copyDir(ctx context.Context, src, dst string) error {
	if out, err := exec.CommandContext(ctx, "cp", "-a", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("copy %s: %w: %s", src, err, strings.TrimSpace(string(out)))
	}
	return nil
}
