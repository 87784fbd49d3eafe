// Package syncnames parses and rewrites PostgreSQL's
// synchronous_standby_names in every form the server accepts, and answers
// what a form guarantees: which standbys count toward a commit's quorum and
// how many of them must confirm it. It has no dependencies, so that the
// cluster code and the pure checkers share one reading of the setting.
package syncnames

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Methods of synchronous_standby_names.
const (
	First = "FIRST"
	Any   = "ANY"
)

// ErrSyntax is wrapped by Parse's errors.
var ErrSyntax = errors.New("invalid synchronous_standby_names")

// Names is a parsed synchronous_standby_names, in every form PostgreSQL
// accepts (https://www.postgresql.org/docs/15/runtime-config-replication.html#GUC-SYNCHRONOUS-STANDBY-NAMES):
// "FIRST n (a, b)", "n (a, b)" (FIRST), "ANY n (a, b)", a plain list "a, b"
// (FIRST 1), "*" (any standby) and "" (asynchronous replication).
type Names struct {
	// Method is First or Any; "" when replication is asynchronous.
	Method string
	// Num is how many synchronous standbys must confirm a commit.
	Num int
	// Names are the standby names in priority order (FIRST); "*" matches
	// every standby.
	Names []string
}

// Parse parses a synchronous_standby_names value (quotes around
// the whole value are ignored).
func Parse(s string) (Names, error) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		s = strings.TrimSpace(strings.ReplaceAll(s[1:len(s)-1], "''", "'"))
	}
	if s == "" {
		return Names{}, nil
	}
	out := Names{Method: First, Num: 1}
	rest := s
	word, after := leadingWord(rest)
	switch strings.ToUpper(word) {
	case Any, First:
		if next := strings.TrimSpace(after); next != "" && (next[0] >= '0' && next[0] <= '9') {
			out.Method, rest = strings.ToUpper(word), next
		}
	}
	if i := strings.IndexByte(rest, '('); i >= 0 {
		n, err := strconv.Atoi(strings.TrimSpace(rest[:i]))
		if err != nil || n < 1 {
			return Names{}, fmt.Errorf("%w: %q: want a positive count before '('", ErrSyntax, s)
		}
		if !strings.HasSuffix(strings.TrimSpace(rest), ")") {
			return Names{}, fmt.Errorf("%w: %q: missing ')'", ErrSyntax, s)
		}
		out.Num = n
		rest = strings.TrimSuffix(strings.TrimSpace(rest[i+1:]), ")")
	} else if out.Method == Any {
		return Names{}, fmt.Errorf("%w: %q: ANY needs 'ANY n (names)'", ErrSyntax, s)
	}
	for _, n := range strings.Split(rest, ",") {
		n = strings.TrimSpace(n)
		if len(n) >= 2 && n[0] == '"' && n[len(n)-1] == '"' {
			n = n[1 : len(n)-1]
		} else {
			if strings.ContainsAny(n, " \t()\"") {
				return Names{}, fmt.Errorf("%w: %q: %q is not a standby name (quote names with spaces)", ErrSyntax, s, n)
			}
			n = strings.ToLower(n)
		}
		if n == "" {
			return Names{}, fmt.Errorf("%w: %q: empty standby name", ErrSyntax, s)
		}
		out.Names = append(out.Names, n)
	}
	return out, nil
}

func leadingWord(s string) (string, string) {
	i := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsLetter(r) })
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// Async reports whether no commit waits for any standby.
func (s Names) Async() bool { return s.Method == "" || s.Num == 0 || len(s.Names) == 0 }

// String renders s in PostgreSQL's syntax ("" when asynchronous).
func (s Names) String() string {
	if s.Async() {
		return ""
	}
	return fmt.Sprintf("%s %d (%s)", s.Method, s.Num, strings.Join(s.Names, ", "))
}

// Eligible reports whether standby may count toward the commit quorum.
func (s Names) Eligible(standby string) bool {
	return !s.Async() && (slices.Contains(s.Names, "*") || slices.Contains(s.Names, standby))
}

// EligibleAmong lists the members of standbys that may count toward the
// quorum, in standbys' order.
func (s Names) EligibleAmong(standbys []string) []string {
	var out []string
	for _, n := range standbys {
		if s.Eligible(n) {
			out = append(out, n)
		}
	}
	return out
}

// Over keeps s's method and count over a new set of standbys (after a
// failover or a rejoin), capping the count at their number: for FIRST,
// names of s that are still standbys keep their priority and the others
// follow in the given order; for ANY, the standbys are named in the given
// order; "*" stays "*". An asynchronous s stays asynchronous
// (that is what the user asked to test); no standby gives "".
func (s Names) Over(standbys []string) Names {
	if s.Async() || len(standbys) == 0 {
		return Names{}
	}
	out := Names{Method: s.Method, Num: min(s.Num, len(standbys))}
	if slices.Contains(s.Names, "*") {
		out.Names = []string{"*"}
		return out
	}
	if s.Method == First {
		// Priority matters: names of s keep their order.
		for _, n := range s.Names {
			if slices.Contains(standbys, n) {
				out.Names = append(out.Names, n)
			}
		}
	}
	for _, n := range standbys {
		if !slices.Contains(out.Names, n) {
			out.Names = append(out.Names, n)
		}
	}
	return out
}
