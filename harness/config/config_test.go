package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/harness"
	"github.com/strongcheck/strongcheck/internal/usererr"
)

// The flags' defaults are the harness's default test, defined once.
func TestNoFlagsIsTheDefaultTest(t *testing.T) {
	_, got, err := Parse(nil)
	require.NoError(t, err)
	d := harness.DefaultTest()
	assert.Equal(t, d.Workloads, got.Workloads)
	assert.Equal(t, d.TimeLimit, got.TimeLimit)
	assert.Equal(t, d.Concurrency, got.Concurrency)
	assert.Equal(t, d.ReadFrom, got.ReadFrom)
	assert.Equal(t, d.OpTimeout, got.OpTimeout)
	assert.Equal(t, d.Interval, got.Interval)
	assert.Equal(t, d.Overrun, got.Overrun)
	assert.Equal(t, d.Failover, got.Failover)
	assert.Equal(t, d.Model, got.Model)
	assert.Equal(t, d.CheckTimeout, got.CheckTimeout)
	assert.Equal(t, d.CheckMemory, got.CheckMemory)
	assert.Equal(t, d.Options.Keys, got.Options.Keys)
	assert.Equal(t, d.Options.Isolation, got.Options.Isolation)
	assert.NotZero(t, got.Seed, "a seed is chosen when --seed is not given")
}

// A zero that means "the default" inside harness.Test is a mistake on the
// command line: Validate, the one place that checks, refuses it.
func TestZeroFlagsAreRefused(t *testing.T) {
	_, _, err := Parse([]string{"--isolation", ""})
	assert.ErrorContains(t, err, "--isolation \"\"", "an empty level is refused, not taken for the default")
	for _, args := range []string{"--check-timeout 0s", "--keys 0", "--nemesis none --nemesis-interval 0s", "--op-timeout 0s", "--concurrency 0", "--isolation snapshot", "--test-count 0"} {
		_, _, err := Parse(strings.Fields(args))
		require.Error(t, err, args)
		assert.True(t, usererr.Is(err), "%s: %v", args, err)
		assert.Contains(t, err.Error(), strings.Fields(args)[len(strings.Fields(args))-2], args)
	}
}

// --overrun: the default allowance, none (0, which inside harness.Test
// would mean the default), or a mistake.
func TestOverrunFlag(t *testing.T) {
	_, got, err := Parse([]string{"--overrun", "90s"})
	require.NoError(t, err)
	assert.Equal(t, 90*time.Second, got.Overrun)
	_, got, err = Parse([]string{"--overrun", "0"})
	require.NoError(t, err)
	assert.Negative(t, got.Overrun, "0 on the command line is none, not the default")
	_, _, err = Parse([]string{"--overrun=-1s"})
	require.Error(t, err)
	assert.True(t, usererr.Is(err))
	assert.Contains(t, err.Error(), "--overrun -1s")
}
