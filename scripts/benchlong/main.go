// Command benchlong runs strongcheck's default test for several lengths and
// prints, for each, what grows with the run: bytes per history line, the
// harness's peak memory while the clients ran, and the time and peak memory
// of `strongcheck check` re-reading the run, so that linear growth (or
// worse) is visible side by side. `make bench-long` runs it; it needs what
// `strongcheck test` needs (root, PostgreSQL) and takes as long as the runs.
//
// Usage:
//
//	go run ./scripts/benchlong [-bin bin/strongcheck] [-store DIR] [-lengths 60s,300s,1800s] [-- extra test flags]
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// row is one run's figures.
type row struct {
	length        time.Duration
	exit          int
	lines, bytes  int64
	harnessRSS    int64
	harnessCPUOp  time.Duration
	check         time.Duration
	checkRSS      int64
	checkExit     int
	reportBytes   int64
	verdict, note string
}

func main() {
	bin := flag.String("bin", "bin/strongcheck", "the strongcheck binary")
	store := flag.String("store", "", "store folder for the runs (default: a new temporary folder)")
	lengths := flag.String("lengths", "60s,300s,1800s", "comma-separated time limits of the runs")
	flag.Parse()
	if err := run(*bin, *store, *lengths, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "benchlong:", err)
		os.Exit(3)
	}
}

func run(bin, store, lengths string, extra []string) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s: %w (run `make build` first)", bin, err)
	}
	if store == "" {
		d, err := os.MkdirTemp("", "strongcheck-benchlong-")
		if err != nil {
			return err
		}
		store = d
	}
	var rows []row
	for _, s := range strings.Split(lengths, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d <= 0 {
			return fmt.Errorf("-lengths: %q is not a positive duration", s)
		}
		r, err := measure(bin, store, d, extra)
		if err != nil {
			return err
		}
		rows = append(rows, r)
		fmt.Fprintf(os.Stderr, "benchlong: %s done (test exit %d, check exit %d)\n", d, r.exit, r.checkExit)
	}
	print(rows, store)
	return nil
}

// measure runs one test of length d and re-checks it.
func measure(bin, store string, d time.Duration, extra []string) (row, error) {
	r := row{length: d}
	name := fmt.Sprintf("long-%ds", int(d.Seconds()))
	args := append([]string{"test", "--store", store, "--name", name, "--time-limit", d.String()}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	r.exit = exitOf(cmd.Run())
	if r.exit > 2 {
		r.note = "the test itself failed (see its output above)"
	}
	dir, err := filepath.EvalSymlinks(filepath.Join(store, name, "latest"))
	if err != nil {
		return r, fmt.Errorf("%s run left no store folder: %w", d, err)
	}
	if err := historyFigures(filepath.Join(dir, "history.jsonl"), &r); err != nil {
		return r, err
	}
	readTestJSON(filepath.Join(dir, "test.json"), &r)
	check := exec.Command(bin, "check", dir)
	t0 := time.Now()
	out, err := check.CombinedOutput()
	r.check = time.Since(t0)
	r.checkExit = exitOf(err)
	if check.ProcessState != nil {
		if ru, ok := check.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.checkRSS = ru.Maxrss * 1024
		}
	}
	if r.checkExit > 2 {
		r.note = strings.TrimSpace(r.note + "; check failed: " + lastLine(string(out)))
	}
	if fi, err := os.Stat(filepath.Join(dir, "report.html")); err == nil {
		r.reportBytes = fi.Size()
	}
	r.verdict = readVerdict(filepath.Join(dir, "results.json"))
	return r, nil
}

// historyFigures counts the history's lines and bytes.
func historyFigures(path string, r *row) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		r.bytes += int64(n)
		for _, b := range buf[:n] {
			if b == '\n' {
				r.lines++
			}
		}
		if err != nil {
			break
		}
	}
	return nil
}

func readTestJSON(path string, r *row) {
	var t struct {
		Harness *struct {
			CPUNS        int64 `json:"cpu_ns"`
			Ops          int64 `json:"ops"`
			PeakRSSBytes int64 `json:"peak_rss_bytes"`
		} `json:"harness"`
	}
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &t) == nil && t.Harness != nil {
		r.harnessRSS = t.Harness.PeakRSSBytes
		if t.Harness.Ops > 0 {
			r.harnessCPUOp = time.Duration(t.Harness.CPUNS / t.Harness.Ops)
		}
	}
}

func readVerdict(path string) string {
	var res struct {
		Verdict string `json:"verdict"`
	}
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &res) != nil {
		return "?"
	}
	return res.Verdict
}

func print(rows []row, store string) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "length\tlines\tbytes/line\tharness peak RSS\tharness CPU/op\tcheck time\tcheck peak RSS\treport.html\tverdict\t")
	for _, r := range rows {
		bpl := 0.0
		if r.lines > 0 {
			bpl = float64(r.bytes) / float64(r.lines)
		}
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%s\t%s\t%.2fs\t%s\t%s\t%s\t\n", r.length, r.lines, bpl, mib(r.harnessRSS),
			r.harnessCPUOp.Round(time.Microsecond/10), r.check.Seconds(), mib(r.checkRSS), kib(r.reportBytes), r.verdict)
	}
	w.Flush()
	if len(rows) > 1 {
		first, last := rows[0], rows[len(rows)-1]
		if first.lines > 0 && last.lines > 0 {
			b0, b1 := float64(first.bytes)/float64(first.lines), float64(last.bytes)/float64(last.lines)
			fmt.Printf("bytes/line %s vs %s: ratio %.2f (flat within 20%%: %v)\n", last.length, first.length, b1/b0, b1/b0 <= 1.2 && b1/b0 >= 0.8)
			perLine := func(r row) float64 { return r.check.Seconds() / float64(r.lines) * 1e6 }
			fmt.Printf("check time per line: %.2f µs at %s, %.2f µs at %s (linear or better: %v)\n",
				perLine(first), first.length, perLine(last), last.length, perLine(last) <= 1.2*perLine(first))
		}
	}
	for _, r := range rows {
		if r.note != "" {
			fmt.Printf("%s: %s\n", r.length, r.note)
		}
	}
	fmt.Printf("runs kept in %s\n", store)
}

func mib(n int64) string {
	if n <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}

func kib(n int64) string {
	if n <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
}

func exitOf(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return 255
	}
	return 0
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
