// Package pgtest starts a throwaway PostgreSQL server for the workload's
// integration tests: initdb in a temporary directory, the server as a child
// process of the test running as the postgres user, listening only on
// 127.0.0.1 on a free port, stopped and reaped by PID in Stop.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strongcheck/strongcheck/cluster/local"
)

// ErrUnavailable is wrapped by Start's error when this machine cannot run a
// server (not root, no postgres user, no binaries): tests skip on it.
var ErrUnavailable = errors.New("pgtest: cannot run PostgreSQL here")

// Server is a running throwaway server.
type Server struct {
	// DSN reaches the server as the superuser postgres (trust auth).
	DSN string
	// BinDir holds the PostgreSQL binaries used.
	BinDir string
	// Dir is the temporary directory (data directory and log), removed by
	// Stop.
	Dir string

	cred *syscall.Credential
	cmd  *exec.Cmd
	done chan struct{} // closed once the server process was reaped
}

// BinDir finds the PostgreSQL binaries the way the local backend does
// (local.FindBinaries: STRONGCHECK_PG_BINDIR, pg_config --bindir, the
// newest /usr/lib/postgresql/*/bin).
func BinDir() (string, error) {
	b, err := local.FindBinaries()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return b.Dir, nil
}

// Start initdb's and starts a server with the given extra settings
// (postgresql.conf parameters passed with -c). ctx bounds the start-up.
// The caller must call Stop.
func Start(ctx context.Context, settings map[string]string) (*Server, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: need root to run the server as the postgres user", ErrUnavailable)
	}
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "sc-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: temp dir: %w", err)
	}
	s := &Server{Dir: dir, BinDir: bin, cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if err := s.start(ctx, settings, uid, gid); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context, settings map[string]string, uid, gid int) error {
	data := filepath.Join(s.Dir, "data")
	if err := os.Chmod(s.Dir, 0o755); err != nil {
		return fmt.Errorf("pgtest: chmod: %w", err)
	}
	if err := os.Mkdir(data, 0o700); err != nil {
		return fmt.Errorf("pgtest: mkdir: %w", err)
	}
	if err := os.Chown(data, uid, gid); err != nil {
		return fmt.Errorf("pgtest: chown: %w", err)
	}
	initdb := exec.CommandContext(ctx, filepath.Join(s.BinDir, "initdb"), "-D", data, "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	initdb.Dir = s.Dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	args := []string{"-D", data, "-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "full_page_writes=off"}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+settings[k])
	}
	logf, err := os.Create(filepath.Join(s.Dir, "server.log"))
	if err != nil {
		return fmt.Errorf("pgtest: log: %w", err)
	}
	defer logf.Close() // the child keeps its own descriptor
	s.cmd = exec.Command(filepath.Join(s.BinDir, "postgres"), args...)
	// A process group of its own, which Kill signals whole.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	s.cmd.Dir = s.Dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	s.DSN = fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=5", port)
	return s.waitReady(ctx)
}

func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, s.DSN)
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-s.done:
			return fmt.Errorf("pgtest: server exited: %s", s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("pgtest: server not ready: %w: %s", err, s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// Log returns the end of the server's log, for test failure messages.
func (s *Server) Log() string { return s.logTail() }

// Stop shuts the server down (fast, then immediate, then SIGKILL), waits
// until its process was reaped, and removes the directory. It is safe to
// call more than once.
func (s *Server) Stop() error {
	var errs []error
	if s.cmd != nil && s.cmd.Process != nil {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGKILL} {
			_ = s.cmd.Process.Signal(sig)
			select {
			case <-s.done:
			case <-time.After(10 * time.Second):
				continue
			}
			break
		}
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			errs = append(errs, fmt.Errorf("pgtest: postgres pid %d not reaped", s.cmd.Process.Pid))
		}
		s.cmd = nil
	}
	if s.Dir != "" {
		if err := os.RemoveAll(s.Dir); err != nil {
			errs = append(errs, fmt.Errorf("pgtest: remove %s: %w", s.Dir, err))
		}
		s.Dir = ""
	}
	return errors.Join(errs...)
}

// Pgbench runs the pgbench binary beside the server's with args against the
// server (as the postgres user) and returns its output.
func (s *Server) Pgbench(ctx context.Context, args ...string) (string, error) {
	cfg, err := pgx.ParseConfig(s.DSN)
	if err != nil {
		return "", err
	}
	all := append([]string{"-h", cfg.Host, "-p", strconv.Itoa(int(cfg.Port)), "-U", "postgres"}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(s.BinDir, "pgbench"), all...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	cmd.Dir = s.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("pgbench: %w: %s", err, out)
	}
	return string(out), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
