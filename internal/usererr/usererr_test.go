package usererr

import (
	"errors"
	"fmt"
	"testing"
)

func TestIsFindsTheMarkUnderOtherErrors(t *testing.T) {
	infra := errors.New("harness error")
	sentinel := Sentinel("bad spec")
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"marked", New("--runs %d: must be at least 1", 0), true},
		{"a sentinel wrapped", fmt.Errorf("%w: node name %q", sentinel, "N 2"), true},
		{"under a harness error", fmt.Errorf("%w: cluster up: %w", infra, fmt.Errorf("%w: x", sentinel)), true},
		{"joined", errors.Join(errors.New("disk full"), Wrap(errors.New("bad flag"))), true},
		{"not the user's", fmt.Errorf("%w: connection refused", infra), false},
		{"nil", Wrap(nil), false},
	} {
		if got := Is(tc.err); got != tc.want {
			t.Errorf("%s: Is(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
	wrapped := fmt.Errorf("%w: x", sentinel)
	if !errors.Is(wrapped, sentinel) || errors.Is(wrapped, Sentinel("bad spec")) {
		t.Error("a sentinel is matched by identity, not by text")
	}
	if got := New("--seed %d", 0).Error(); got != "--seed 0" {
		t.Errorf("the text is unchanged: %q", got)
	}
}
