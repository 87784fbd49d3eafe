package exitcode

import (
	"testing"

	"github.com/strongcheck/strongcheck/checker"
)

func TestOf(t *testing.T) {
	for v, want := range map[checker.Verdict]int{checker.Valid: 0, checker.Invalid: 1, checker.Unknown: 2, "bogus": 2, "": 2} {
		if got := Of(v); got != want {
			t.Errorf("Of(%q) = %d, want %d", v, got, want)
		}
	}
}
