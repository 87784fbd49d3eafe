package workload_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/workload"
)

// BenchmarkRegisterWrite compares serial register writes through the
// workload (Next + Do, one connection) with pgbench running the same
// statement (PgbenchWriteScript, -M prepared, one client) on the same
// throwaway server: compare the two ns/op. Without pgbench the second
// sub-benchmark is skipped.
//
//	go test ./workload -run '^$' -bench BenchmarkRegisterWrite -benchtime 3s
func BenchmarkRegisterWrite(b *testing.B) {
	s := startServer(b)
	c := connect(b, s)
	w := newWorkload(b, "register", workload.Options{WritesOnly: true})
	setup(b, w, c)

	b.Run("workload", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 1))
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			inv, _ := w.Next(rng)
			opCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			got := w.Do(opCtx, c, inv)
			cancel()
			if got.Type != results.OK {
				b.Fatalf("write: %+v", got)
			}
		}
	})

	b.Run("pgbench", func(b *testing.B) {
		if _, err := os.Stat(filepath.Join(s.BinDir, "pgbench")); err != nil {
			b.Skip("no pgbench beside initdb")
		}
		script := filepath.Join(s.Dir, "write.sql")
		require.NoError(b, os.WriteFile(script, []byte(workload.PgbenchWriteScript(10)), 0o644))
		b.ResetTimer()
		_, err := s.Pgbench(context.Background(), "-n", "-M", "prepared", "-c", "1", "-f", script,
			"-t", strconv.Itoa(b.N), "postgres")
		require.NoError(b, err)
	})
}
