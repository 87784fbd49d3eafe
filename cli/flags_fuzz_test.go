package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strongcheck/strongcheck/cli/exitcode"
	"github.com/strongcheck/strongcheck/harness/config"
	"github.com/strongcheck/strongcheck/results"
)

// parseTestArgs is `strongcheck test`'s parsing without running anything:
// scenario expansion, then config.Parse.
func parseTestArgs(args []string) error {
	expanded, err := expandScenario(append([]string{"strongcheck", "test"}, args...))
	if err != nil {
		return err
	}
	f, t, err := config.Parse(expanded[2:])
	if err != nil {
		return err
	}
	// Accepted: the test must be one the harness accepts as it is.
	if err := t.Validate(); err != nil {
		return errors.Join(errors.New("parseTest accepted a test that Validate refuses"), err)
	}
	if results.ValidTestName(t.Name) != nil || len(t.Workloads) == 0 || t.Concurrency < 1 || t.TimeLimit <= 0 {
		return errors.New("parseTest accepted a test without a valid name, workload, concurrency or time limit")
	}
	if t.Rate > 0 && time.Duration(float64(time.Second)/t.Rate) <= 0 || t.Rate != t.Rate {
		return fmt.Errorf("parseTest accepted a rate the harness cannot pace: %v", t.Rate)
	}
	if f.CheckMemory > 0 && t.CheckMemory>>20 != f.CheckMemory {
		return fmt.Errorf("parseTest accepted a memory budget that overflows: %d MiB", f.CheckMemory)
	}
	return nil
}

// FuzzTestFlags gives `strongcheck test` any command line (words separated
// by whitespace): parsing must not panic and must either accept a test the
// harness accepts, or refuse with a bad-arguments error (exit 254) that
// says what is wrong. Nothing is started.
//
//	go test -run '^$' -fuzz FuzzTestFlags -fuzztime 60s ./cli/
func FuzzTestFlags(f *testing.F) {
	f.Fuzz(func(t *testing.T, line string) {
		err := parseTestArgs(strings.Fields(line))
		if err == nil {
			return
		}
		if strings.HasPrefix(err.Error(), "parseTest accepted") {
			t.Fatalf("%q: %v", line, err)
		}
		if code := exitCode(err); code != exitcode.Usage {
			t.Fatalf("%q: exit %d for %v, want %d (a bad argument)", line, code, err, exitcode.Usage)
		}
		if strings.TrimSpace(err.Error()) == "" {
			t.Fatalf("%q: an error without a message", line)
		}
	})
}
