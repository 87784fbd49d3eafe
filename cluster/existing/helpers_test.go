package existing

import (
	"os"
	"os/user"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

// processExists reports whether pid is a live (not zombie) process.
func processExists(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// userName is the role pgconn defaults to when a DSN names none.
func userName() string {
	if u := os.Getenv("PGUSER"); u != "" {
		return u
	}
	u, _ := user.Current()
	return u.Username
}
