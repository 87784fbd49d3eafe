package elle

import (
	"fmt"
	"slices"
	"strings"
)

// Kind is the stable name of an anomaly.
type Kind string

// Anomalies about single reads and writes. They need no cycle.
const (
	// Internal: a transaction's read disagreed with its own earlier reads
	// and appends of the same key.
	Internal Kind = "internal"
	// DuplicateElements: a read returned the same element twice.
	DuplicateElements Kind = "duplicate-elements"
	// IncompatibleOrder: two reads of a key are not prefixes of one list,
	// so no single order of appends explains both.
	IncompatibleOrder Kind = "incompatible-order"
	// UnexpectedElement: a read returned an element no transaction appended.
	UnexpectedElement Kind = "unexpected-element"
	// G1a (aborted read): a committed transaction read an element appended
	// by a transaction that failed.
	G1a Kind = "G1a"
	// G1b (intermediate read): a transaction read a list ending in an
	// element that its writer followed with another append to the same key.
	G1b Kind = "G1b"
	// LostAppend: an acknowledged append is missing from the final read of
	// its key on the final primary.
	LostAppend Kind = "lost-append"
)

// The cycle classes of the dependency graph, named by their data edges
// (Adya's G0, G1c, G-single, G2-item; Elle's G-nonadjacent) with a
// -process or -realtime suffix when the cycle needs a process or a
// real-time edge.
const (
	G0           Kind = "G0"
	G1c          Kind = "G1c"
	GSingle      Kind = "G-single"
	GNonadjacent Kind = "G-nonadjacent"
	G2Item       Kind = "G2-item"

	G0Process           Kind = "G0-process"
	G1cProcess          Kind = "G1c-process"
	GSingleProcess      Kind = "G-single-process"
	GNonadjacentProcess Kind = "G-nonadjacent-process"
	G2ItemProcess       Kind = "G2-item-process"

	G0Realtime           Kind = "G0-realtime"
	G1cRealtime          Kind = "G1c-realtime"
	GSingleRealtime      Kind = "G-single-realtime"
	GNonadjacentRealtime Kind = "G-nonadjacent-realtime"
	G2ItemRealtime       Kind = "G2-item-realtime"
)

// kindInfo is what the package knows about a kind: its rank (most severe
// first) and what it means.
type kindInfo struct {
	kind    Kind
	explain string
}

// Kinds lists every kind, most severe first: the order of Result.Anomalies.
var kinds = []kindInfo{
	{Internal, "A transaction's read disagreed with its own earlier reads and appends of the same key: the database did not show a transaction its own writes."},
	{DuplicateElements, "A read returned the same element twice, though every element was appended once."},
	{IncompatibleOrder, "Two reads of the same key are not prefixes of one list: no single order of the appends explains both."},
	{UnexpectedElement, "A read returned an element that no transaction appended."},
	{LostAppend, "An acknowledged append is missing from the final read of its key on the final primary: a committed write was lost."},
	{G0, "A cycle of write-write dependencies (dirty write): two transactions' appends interleaved on several keys in opposite orders."},
	{G1a, "A committed transaction read an element appended by a transaction that failed (aborted read)."},
	{G1b, "A transaction read a list ending in an element its writer followed with another append to the same key: it saw an intermediate state (intermediate read)."},
	{G1c, "A cycle of write-write and write-read dependencies: information flowed in a circle between committed transactions."},
	{GSingle, "A cycle with exactly one read-write anti-dependency: a transaction saw some of another's effects but missed others (read skew)."},
	{GNonadjacent, "A cycle with several anti-dependencies, no two adjacent: readers observed transactions in orders no single snapshot order allows (long fork)."},
	{G2Item, "A cycle with adjacent anti-dependencies: transactions each read what the other then changed (write skew)."},
	{G0Process, "A write-write cycle that needs a process's own order: a client's later transaction was ordered before its earlier one."},
	{G1cProcess, "A write-write/write-read cycle that needs a process's own order."},
	{GSingleProcess, "A cycle with one anti-dependency and a process's own order: a client did not see its own earlier transaction."},
	{GNonadjacentProcess, "A cycle with non-adjacent anti-dependencies and a process's own order."},
	{G2ItemProcess, "A cycle with adjacent anti-dependencies and a process's own order."},
	{G0Realtime, "A write-write cycle that needs real time: a transaction's append was ordered before that of a transaction that had already completed."},
	{G1cRealtime, "A write-write/write-read cycle that needs real time: a transaction read from one that began only after it completed."},
	{GSingleRealtime, "A cycle with one anti-dependency and a real-time edge: a transaction missed an append acknowledged before it began (a stale read)."},
	{GNonadjacentRealtime, "A cycle with non-adjacent anti-dependencies and real-time edges."},
	{G2ItemRealtime, "A cycle with adjacent anti-dependencies and real-time edges."},
}

// Kinds returns every anomaly kind the checker reports, most severe first.
func Kinds() []Kind {
	out := make([]Kind, len(kinds))
	for i, k := range kinds {
		out[i] = k.kind
	}
	return out
}

// Explain returns the one-sentence explanation of k ("" for a kind this
// package does not know).
func Explain(k Kind) string {
	for _, ki := range kinds {
		if ki.kind == k {
			return ki.explain
		}
	}
	return ""
}

func rank(k Kind) int {
	for i, ki := range kinds {
		if ki.kind == k {
			return i
		}
	}
	return len(kinds)
}

// Model is a consistency model and the anomalies it forbids.
type Model struct {
	Name string
	// Forbids lists every kind whose presence rules the model out
	// (implied kinds included: serializable forbids G0 as well as G2-item).
	Forbids []Kind
	// Doc says in a sentence what the model promises.
	Doc string
}

// Integrity anomalies are forbidden by every model: a database that loses
// an acknowledged append, returns an element twice or one nobody wrote, or
// whose reads fit no single order of appends is wrong at any isolation
// level. Internal inconsistency is not among them: read committed takes a
// new snapshot per statement, so two reads of a key in one transaction may
// differ there; snapshot isolation and stronger models forbid it.
var integrity = []Kind{DuplicateElements, IncompatibleOrder, UnexpectedElement, LostAppend}

func union(sets ...[]Kind) []Kind {
	var out []Kind
	for _, s := range sets {
		for _, k := range s {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.SortFunc(out, func(a, b Kind) int { return rank(a) - rank(b) })
	return out
}

var (
	plReadUncommitted = union(integrity, []Kind{G0})
	plReadCommitted   = union(plReadUncommitted, []Kind{G1a, G1b, G1c})
	plSI              = union(plReadCommitted, []Kind{Internal, GSingle, GNonadjacent})
	plSerializable    = union(plSI, []Kind{G2Item})
	processSI         = []Kind{G0Process, G1cProcess, GSingleProcess, GNonadjacentProcess}
	processSer        = union(processSI, []Kind{G2ItemProcess})
	// A process's order is also real-time order (a client runs one
	// transaction at a time), so every process anomaly is a real-time one.
	realtimeSI  = union(processSI, []Kind{G0Realtime, G1cRealtime, GSingleRealtime, GNonadjacentRealtime})
	realtimeSer = union(processSer, realtimeSI, []Kind{G2ItemRealtime})
)

// Models are the consistency models a Result judges, strongest first. A
// model forbids every kind its weaker models forbid. With list-append there
// are no predicate reads, so repeatable read (Adya's PL-2.99) forbids the
// same cycles as serializable; PostgreSQL's REPEATABLE READ is snapshot
// isolation.
var Models = []Model{
	{"strict-serializable", union(plSerializable, realtimeSer), "serializable, in an order that respects real time: a transaction sees every transaction that completed before it began"},
	{"strong-snapshot-isolation", union(plSI, realtimeSI), "snapshot isolation whose snapshots include every transaction that completed before the reader began"},
	{"strong-session-serializable", union(plSerializable, processSer), "serializable, and each client sees its own earlier transactions"},
	{"serializable", plSerializable, "some serial order of the committed transactions explains every read (conflict serializability)"},
	{"repeatable-read", plSerializable, "Adya's PL-2.99: no G1 and no item anti-dependency cycle; without predicate reads the same as serializable (PostgreSQL's REPEATABLE READ is snapshot isolation, which allows G2-item)"},
	{"strong-session-snapshot-isolation", union(plSI, processSI), "snapshot isolation, and each client's snapshots include its own earlier transactions"},
	{"snapshot-isolation", plSI, "every transaction reads one consistent snapshot and no two concurrent transactions write the same key; write skew (G2-item) is allowed"},
	{"read-committed", plReadCommitted, "no dirty writes, no reads of aborted or intermediate state, no circular information flow"},
	{"read-uncommitted", plReadUncommitted, "no dirty writes (no write-write cycle)"},
}

// ModelNames lists the models' names, strongest first.
func ModelNames() []string {
	out := make([]string, len(Models))
	for i, m := range Models {
		out[i] = m.Name
	}
	return out
}

// LookupModel returns the model called name (case-insensitive; "strict-1sr"
// and "strong-serializable" are strict-serializable).
func LookupModel(name string) (Model, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	switch n {
	case "strong-serializable", "strict-1sr":
		n = "strict-serializable"
	case "si":
		n = "snapshot-isolation"
	}
	for _, m := range Models {
		if m.Name == n {
			return m, nil
		}
	}
	return Model{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownModel, name, strings.Join(ModelNames(), ", "))
}

// ModelForIsolation is the model PostgreSQL documents for an isolation
// level as strongcheck's --isolation names it: read-committed,
// repeatable-read (snapshot isolation in PostgreSQL) and serializable.
func ModelForIsolation(level string) (Model, error) {
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "read-committed", "read committed":
		return LookupModel("read-committed")
	case "repeatable-read", "repeatable read":
		return LookupModel("snapshot-isolation")
	case "serializable":
		return LookupModel("serializable")
	}
	return Model{}, fmt.Errorf("%w: isolation level %q (want read-committed, repeatable-read or serializable)", ErrUnknownModel, level)
}

// judge fills Satisfies, RulesOut and Undecided from the anomalies found
// and the kinds whose search did not finish.
func judge(r *Result, counts map[Kind]int, incomplete map[Kind]bool) {
	for _, m := range Models {
		var by []KindCount
		open := false
		for _, k := range m.Forbids {
			if c := counts[k]; c > 0 {
				by = append(by, KindCount{k, c})
			}
			if incomplete[k] {
				open = true
			}
		}
		switch {
		case len(by) > 0:
			r.RulesOut = append(r.RulesOut, RuledOut{Model: m.Name, By: by})
		case open:
			r.Undecided = append(r.Undecided, m.Name)
		default:
			r.Satisfies = append(r.Satisfies, m.Name)
		}
	}
}

// verdictFor is the verdict for model m.
func verdictFor(r *Result, m Model) Validity {
	for _, ro := range r.RulesOut {
		if ro.Model == m.Name {
			return Invalid
		}
	}
	if slices.Contains(r.Undecided, m.Name) {
		return Unknown
	}
	return Valid
}
