package checker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/strongcheck/strongcheck/results"
)

// Options tune CheckHistory and the single checkers. The zero value is usable.
type Options struct {
	// Timeout bounds the linearizability search (0: none). When it runs
	// out the linearizable verdict is Unknown, never Valid.
	Timeout time.Duration
	// FinalPrimary names the node that was primary when the final reads
	// were taken; empty: the last primary the nemesis recorded, else the
	// node of the last acknowledged write.
	FinalPrimary string
	// Settings are the PostgreSQL settings the run used (name -> value,
	// e.g. synchronous_commit, synchronous_standby_names): the postgres
	// model's judgement of what is documented follows them. A missing
	// synchronous_commit is taken as "on", PostgreSQL's default.
	Settings map[string]string
	// MemoryBudget, when not 0, is the heap (bytes in live objects) the
	// linearizability search may grow to: keys not begun once the heap
	// exceeds it are left undecided and the verdict is Unknown, with the
	// keys it did decide. One key's search is not interrupted (porcupine
	// takes no context), so the peak can pass the budget by that much.
	MemoryBudget uint64
	// Model is the model whose verdict becomes Result.Verdict (one of
	// Models; empty: ModelGuide). Every model is judged either way.
	Model Model
	// Isolation is the list-append workload's isolation level
	// (read-committed, repeatable-read, serializable; empty: serializable):
	// it chooses the model the list-append check judges (listappend.go).
	Isolation results.Isolation
}

// WithRun returns o with what a stored run's test.json says about how it
// was judged: its settings, its list-append isolation level and, when o
// names no model, the run's own model. strongcheck check and the harness's
// re-check both judge a stored run this way, so they agree with the run.
func (o Options) WithRun(info *results.TestInfo) Options {
	if info == nil {
		return o
	}
	o.Settings = info.Settings
	o.Isolation = info.Isolation
	if o.Model == "" {
		o.Model = Model(info.Model)
	}
	return o
}

// CheckHistory runs every checker that applies to the workloads in h, names
// the anomalies they find, and judges the history under every model:
// linearizable (porcupine on the writes and the primary's reads, and again
// on every node's reads when standbys served some), rpo, stale-read (with
// new-then-old and non-monotonic reads) for register; rpo and the same read
// anomalies for set; rpo and bank for bank; list-append for append; faults
// (did every fault take effect) and availability always, in that fixed
// order. Result.Verdict is
// opts.Model's verdict. A history cut short (Torn, or without final reads)
// is judged as far as it goes. ctx stops the work early; what was not
// decided is then Unknown.
func CheckHistory(ctx context.Context, hist *results.History, opts Options) Result {
	if hist == nil {
		hist = &results.History{}
	}
	return checkIndexed(ctx, index(hist.Ops), opts, results.Tail{Lines: len(hist.Ops), Torn: hist.Torn, TornLine: hist.TornLine})
}

// CheckFile judges the history at path as CheckHistory does, reading it
// once without keeping its lines (memory follows the number of operations
// at some 70 bytes each, not the file's size). also, when not nil, sees
// every operation as it is read (the report's timeline is built that way).
// A history that cannot be read returns the scan's error: a corrupt one a
// results.CorruptError, after which nothing was judged.
func CheckFile(ctx context.Context, path string, opts Options, also func(op *results.Op)) (Result, results.Tail, error) {
	var scanErr error
	var tail results.Tail
	h := indexSeq(func(yield func(*results.Op) bool) {
		tail, scanErr = results.ScanFile(path, func(op *results.Op) error {
			if also != nil {
				also(op)
			}
			if !yield(op) {
				return errStopped
			}
			return nil
		})
	})
	if scanErr != nil {
		return Result{}, tail, scanErr
	}
	return checkIndexed(ctx, h, opts, tail), tail, nil
}

// errStopped ends a scan whose consumer stopped early.
var errStopped = errors.New("stopped")

// checkIndexed runs every checker on an indexed history.
func checkIndexed(ctx context.Context, h *history, opts Options, tail results.Tail) Result {
	res := Result{Schema: ResultSchema, Model: opts.Model}
	if res.Model == "" {
		res.Model = ModelGuide
	}
	res.Ops, res.Torn = tail.Lines, tail.Torn
	rt := h.roleTimeline()
	dc := newDocContext(h, rt, opts.Settings)
	an := newAnomalySet(h)
	present := h.workloads()
	var lin, linAll, reads *Check
	var ri *regIndex
	if present[results.WorkloadRegister] {
		ri = indexRegister(h)
		standbyReads := markPrimaryReads(h, ri, rt)
		c := unlessRepeats(ri, NameStaleRead, func() Check { return checkReads(ctx, h, ri, dc, an) }) // repeats.go
		reads = &c
		l := checkLinearizable(ctx, h, ri, opts.Timeout, opts.MemoryBudget, scopePrimary)
		lin = &l
		if standbyReads > 0 {
			la := checkLinearizable(ctx, h, ri, opts.Timeout, opts.MemoryBudget, scopeAll)
			linAll = &la
		}
	}
	var checks []Check
	if present[results.WorkloadRegister] || present[results.WorkloadSet] || present[results.WorkloadBank] {
		if ri == nil {
			ri = &regIndex{vals: newValIndex(0, 0)}
		}
		rpo := unlessRepeats(ri, NameRPO, func() Check { return checkRPO(ctx, h, ri, opts, dc, an) }) // repeats.go
		if present[results.WorkloadSet] {
			checkSetReads(ctx, h, dc, an)
		}
		// The named anomalies are all known now: they explain (or not)
		// why porcupine found no legal order.
		for _, l := range []*Check{lin, linAll} {
			if l == nil {
				continue
			}
			kind, docOf := KindNonLinearizable, func(key string) docVerdict { return dc.nonLinearizable(ri.cancelledWrites(key)) }
			if l.Name == NameLinearizableAll {
				kind, docOf = KindNonLinearizableAll, func(string) docVerdict { return docNonLinearAll }
			}
			an.explainBadKeys(l, kind, docOf)
			checks = append(checks, *l)
		}
		checks = append(checks, rpo)
	}
	if reads != nil {
		checks = append(checks, *reads)
	}
	if present[results.WorkloadBank] {
		checks = append(checks, checkBank(ctx, h, opts, dc, an))
	}
	// list-append (issue 15): Elle's dependency-graph check and its
	// anomalies, listappend.go.
	if present[results.WorkloadAppend] {
		checks = append(checks, checkListAppend(ctx, h, opts, an))
	}
	checks = append(checks, checkFaults(ctx, h), checkAvailability(ctx, h))
	res.Checks = checks
	res.Anomalies = an.list()
	res.Models = judgeModels(res.Anomalies, res.Checks)
	if m := res.ModelResult(res.Model); m != nil {
		res.Verdict = m.Verdict
	} else {
		res.Verdict = Unknown
	}
	res.Notes = notes(&res, tail.TornLine, dc)
	return res
}

// Find returns the check named name, or nil.
func (r *Result) Find(name string) *Check {
	for i := range r.Checks {
		if r.Checks[i].Name == name {
			return &r.Checks[i]
		}
	}
	return nil
}

// notes explain the findings in plain sentences: the verdict under the
// chosen model, what rules each model out, what could not be decided, and
// which setting would change the guide's result.
func notes(r *Result, tornLine int, dc *docContext) []string {
	var out []string
	if r.Torn {
		out = append(out, fmt.Sprintf("The history ends in a torn line (line %d, the run was killed while writing it); it was checked up to that line.", tornLine))
	}
	if m := r.ModelResult(r.Model); m != nil {
		out = append(out, fmt.Sprintf("Verdict under the %s model (%s): %s.", r.Model, ModelHelp[r.Model], m.Summary))
	}
	out = append(out, "Every model: "+r.ModelsLine()+".")
	for _, a := range r.Anomalies {
		status := "PostgreSQL does not document this for this configuration: a finding."
		if a.Documented {
			status = "PostgreSQL documents this for this configuration."
		}
		out = append(out, fmt.Sprintf("%s %s %s.", a.Explanation, status, capitalize(a.Why)))
	}
	if c := r.Find(NameFaults); c != nil && c.Verdict == Valid && c.Faults != nil && len(c.Faults.TwoPrimaries) > 0 {
		var seen []string
		for _, p := range c.Faults.TwoPrimaries {
			seen = append(seen, p.String())
		}
		out = append(out, fmt.Sprintf("More than one node was out of recovery at once (%s). The failover is external, so this is the state the HA manager left, not a failed fault; whether the old primary acknowledged a write the promotion lost or served a stale read is what the rpo, linearizable and stale-read checks judge.", listShort(seen, 3)))
	}
	if c := r.Find(NameFaults); c != nil && c.Faults != nil {
		if fs, ok := c.Faults.failedSettle(); ok {
			out = append(out, fmt.Sprintf("The cluster did not come back whole after the last fault (%s). The faults took effect; under an HA manager this is the state the manager left, a finding of the run to read in the report's timeline, and the checks judged what each node held at the end. The faults check stays unknown: the run could not show a settled cluster.", fs.Error))
		}
	}
	if c := r.Find(NameFaults); c != nil && c.Verdict != Valid && (c.Faults == nil || !c.Faults.onlySettle()) {
		out = append(out, "Not every fault took effect, so the run proves less than it set out to: "+c.Error+". Unknown is not a pass.")
	}
	for _, c := range r.Checks {
		if c.Verdict == Unknown && c.Name != NameFaults {
			out = append(out, fmt.Sprintf("The %s check could not decide: %s. Unknown is not a pass.", c.Name, c.Error))
		}
	}
	if g := r.ModelResult(ModelGuide); g != nil && g.Verdict == Invalid && dc.syncCommit != "remote_apply" {
		for _, ru := range g.RuledOutBy {
			if ru.Kind == KindStaleRead {
				out = append(out, fmt.Sprintf("The guide promises that an acknowledged write is readable from the synchronous standbys; with synchronous_commit=%s a commit is acknowledged once they have flushed its WAL, not replayed it. synchronous_commit=remote_apply waits for the replay and would change this.", dc.syncCommit))
				break
			}
		}
	}
	if c := r.Find(NameRPO); c != nil && c.RPO != nil && c.Verdict == Valid {
		msg := fmt.Sprintf("All %d acknowledged writes survived every promotion (RPO = 0).", c.RPO.Acknowledged)
		if c.RPO.AckedWithWarning > 0 {
			msg += fmt.Sprintf(" %d were acknowledged with the sync-wait warning and survived anyway.", c.RPO.AckedWithWarning)
		}
		out = append(out, msg)
	}
	return out
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
