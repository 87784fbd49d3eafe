package syncnames

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every form PostgreSQL accepts parses to its method, count and names.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Names
		str  string
	}{
		{"", Names{}, ""},
		{"''", Names{}, ""},
		{"ANY 2 (n2, n3)", Names{Any, 2, []string{"n2", "n3"}}, "ANY 2 (n2, n3)"},
		{"'ANY 2 (n2, n3)'", Names{Any, 2, []string{"n2", "n3"}}, "ANY 2 (n2, n3)"},
		{"any 1 (N2,n3)", Names{Any, 1, []string{"n2", "n3"}}, "ANY 1 (n2, n3)"},
		{"FIRST 1 (n2, n3)", Names{First, 1, []string{"n2", "n3"}}, "FIRST 1 (n2, n3)"},
		{"2 (n2, n3)", Names{First, 2, []string{"n2", "n3"}}, "FIRST 2 (n2, n3)"},
		{"n2, n3", Names{First, 1, []string{"n2", "n3"}}, "FIRST 1 (n2, n3)"},
		{"n3", Names{First, 1, []string{"n3"}}, "FIRST 1 (n3)"},
		{"*", Names{First, 1, []string{"*"}}, "FIRST 1 (*)"},
		{"ANY 1 (*)", Names{Any, 1, []string{"*"}}, "ANY 1 (*)"},
		{`FIRST 1 ("N2", n3)`, Names{First, 1, []string{"N2", "n3"}}, "FIRST 1 (N2, n3)"},
		// A standby may be called "first" or "any".
		{"first, any", Names{First, 1, []string{"first", "any"}}, "FIRST 1 (first, any)"},
	} {
		got, err := Parse(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
		assert.Equal(t, tc.str, got.String(), tc.in)
	}
	for _, bad := range []string{"ANY (n2)", "ANY n2, n3", "0 (n2)", "2 (n2, n3", "n2,,n3", "x (n2)"} {
		_, err := Parse(bad)
		assert.True(t, errors.Is(err, ErrSyntax), "%q: %v", bad, err)
	}
}

func TestEligibleAndOver(t *testing.T) {
	s, _ := Parse("FIRST 1 (n3, n2)")
	assert.Equal(t, []string{"n2", "n3"}, s.EligibleAmong([]string{"n1", "n2", "n3"}))
	assert.False(t, s.Eligible("n1"))
	// After n2 was promoted and n1 rejoined, n3 keeps its priority.
	assert.Equal(t, "FIRST 1 (n3, n1)", s.Over([]string{"n1", "n3"}).String())
	a, _ := Parse("ANY 2 (n2, n3)")
	assert.Equal(t, "ANY 1 (n3)", a.Over([]string{"n3"}).String(), "the count is capped at the standbys left")
	assert.Equal(t, "", a.Over(nil).String())
	star, _ := Parse("*")
	assert.True(t, star.Eligible("n9"))
	assert.Equal(t, "FIRST 1 (*)", star.Over([]string{"n1"}).String())
	empty, _ := Parse("")
	assert.True(t, empty.Async())
	assert.Equal(t, "", empty.Over([]string{"n2"}).String(), "asynchronous stays asynchronous")
}
