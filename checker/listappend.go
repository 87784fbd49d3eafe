package checker

import (
	"context"
	"fmt"

	"github.com/strongcheck/strongcheck/checker/elle"
	"github.com/strongcheck/strongcheck/results"
)

// NameListAppend is the list-append check: Elle's dependency-graph analysis
// of the transactions (package checker/elle).
const NameListAppend = "list-append"

// CheckListAppend judges the list-append transactions of ops with package
// elle, against the model PostgreSQL documents for opts.Isolation
// (read-committed: read committed; repeatable-read: snapshot isolation;
// serializable or empty: serializable). The result's ListAppend says
// which other models the history satisfies and which anomalies rule the
// rest out.
func CheckListAppend(ctx context.Context, ops []results.Op, opts Options) Check {
	model, err := elle.ModelForIsolation(opts.Isolation)
	if opts.Isolation == "" {
		model, err = elle.LookupModel("serializable")
	}
	if err != nil {
		return Check{Name: NameListAppend, Verdict: Unknown, Error: err.Error(), Summary: "unknown: " + err.Error()}
	}
	r := elle.Check(ctx, ops, elle.Options{Model: model.Name, Timeout: opts.Timeout, MemoryBudget: opts.MemoryBudget,
		FinalPrimary: opts.FinalPrimary})
	level := opts.Isolation
	if level == "" {
		level = "serializable"
	}
	return Check{Name: NameListAppend, Verdict: Verdict(r.Verdict), Error: r.Error, ElapsedNS: r.ElapsedNS, ListAppend: r,
		Summary: fmt.Sprintf("judged as %s (the transactions ran at %s): %s", model.Name, level, r.Summary)}
}
