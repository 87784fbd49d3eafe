package existing

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/strongcheck/strongcheck/cluster"
)

// ErrLeftChanged wraps Close's account of what it could not undo: each
// item says what is left and how to undo it by hand.
var ErrLeftChanged = errors.New("left changed on your cluster")

// Close implements cluster.Cluster: it undoes what the run left open
// (resume paused nodes, heal partitions, start nodes it stopped, with the
// user's commands), then drops the run's schema on the primary unless
// Options.KeepTables. It never stops the cluster. What it could not undo
// is returned, wrapping ErrLeftChanged, each with how to undo it; the
// same call again tries again.
func (c *Cluster) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	var paused, down []string
	for n, r := range c.status {
		switch r {
		case cluster.Paused:
			paused = append(paused, n)
		case cluster.Down:
			down = append(down, n)
		}
	}
	c.mu.Unlock()
	sort.Strings(paused)
	sort.Strings(down)
	var left []string
	for _, n := range paused {
		if err := c.Resume(ctx, n); err != nil {
			left = append(left, fmt.Sprintf("%s is paused (%v); run your resume command for it", n, err))
		}
	}
	if err := c.Heal(ctx); err != nil {
		left = append(left, fmt.Sprintf("a partition is open (%v); run your heal command for %s", err, strings.Join(c.openCuts(), ", ")))
	}
	for _, n := range down {
		if err := c.Start(ctx, n); err != nil {
			left = append(left, fmt.Sprintf("%s is down (%v); run your start command for it", n, err))
		}
	}
	if s := c.dropSchema(ctx); s != "" {
		left = append(left, s)
	}
	if len(left) > 0 {
		return fmt.Errorf("%w: %s", ErrLeftChanged, strings.Join(left, "; "))
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func (c *Cluster) openCuts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k := range c.cut {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// dropSchema drops the run's schema on the primary it finds; it returns
// what is left when it could not.
func (c *Cluster) dropSchema(ctx context.Context) string {
	c.mu.Lock()
	created := c.created
	c.mu.Unlock()
	if !created || c.opts.KeepTables {
		if created {
			c.logf("kept schema %s (--keep-tables)", c.opts.Schema)
		}
		return ""
	}
	_, drop := c.SchemaSQL()
	p, err := cluster.FindPrimary(ctx, c)
	if err == nil {
		// Committed locally: a standby the run left cut off or down
		// must not hold the cleanup; it replays the drop when it is back.
		err = cluster.Exec(ctx, c, p, "SET synchronous_commit = local", drop)
	}
	if err != nil {
		return fmt.Sprintf("schema %s is left (%v): run %q on the primary", c.opts.Schema, err, drop)
	}
	c.logf("dropped schema %s on %s", c.opts.Schema, p)
	c.mu.Lock()
	c.created = false
	c.mu.Unlock()
	return ""
}
