package local

import (
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waitNone returns once nothing is left, and names what is left when it
// gives up.
func TestWaitNone(t *testing.T) {
	polls := 0
	goneOnThird := func(pid int) bool { polls++; return pid == 2 && polls < 6 }
	require.NoError(t, waitNone([]int{1, 2, 3}, goneOnThird, pidOf, time.Millisecond, time.Second, "still alive"))

	err := waitNone([]int{1, 2, 3}, func(pid int) bool { return pid != 1 }, pidOf, time.Millisecond, 20*time.Millisecond, "still present")
	require.Error(t, err)
	assert.Equal(t, "processes [2 3] still present after 20ms", err.Error())
}

// The three waits agree on a process that has exited and been reaped.
func TestWaitsForARealProcess(t *testing.T) {
	cmd := exec.Command("sleep", "0.05")
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	p, ok := procOf(pid)
	require.True(t, ok, "sleep is running")
	assert.Error(t, waitGone([]int{pid}, 10*time.Millisecond), "still running")
	require.NoError(t, cmd.Wait())
	assert.NoError(t, waitGone([]int{pid}, time.Second))
	assert.NoError(t, waitVanished([]int{pid}, time.Second))
	assert.NoError(t, waitReaped([]proc{p}, time.Second))
}
