package checker

import (
	"context"
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
	// e.g. synchronous_commit, synchronous_standby_names); they only
	// shape the notes. A missing synchronous_commit is taken as "on",
	// PostgreSQL's default.
	Settings map[string]string
	// Isolation is the list-append workload's isolation level
	// (read-committed, repeatable-read, serializable; empty: serializable):
	// it chooses the model the list-append check judges.
	Isolation string
	// MemoryBudget, when not 0, is the heap (bytes in live objects) the
	// linearizability search may grow to: keys not begun once the heap
	// exceeds it are left undecided and the verdict is Unknown, with the
	// keys it did decide. One key's search is not interrupted (porcupine
	// takes no context), so the peak can pass the budget by that much.
	MemoryBudget uint64
}

// CheckHistory runs every checker that applies to the workloads in h:
// linearizable and stale-read for register, rpo for register, set and
// bank, bank for bank, list-append for append, and availability always,
// in that fixed order. The verdict combines theirs (Combine); Notes say in plain words what the
// findings mean for the guide's promise. A history cut short (Torn, or
// without final reads) is judged as far as it goes. ctx stops the work
// early; what was not decided is then Unknown.
func CheckHistory(ctx context.Context, hist *results.History, opts Options) Result {
	res := Result{Schema: ResultSchema}
	if hist == nil {
		hist = &results.History{}
	}
	res.Ops, res.Torn = len(hist.Ops), hist.Torn
	h := index(hist.Ops)
	present := h.workloads()
	var ri *regIndex
	if present[results.WorkloadRegister] {
		ri = indexRegister(h)
		res.Checks = append(res.Checks, checkLinearizable(ctx, h, ri, opts.Timeout, opts.MemoryBudget))
	}
	if present[results.WorkloadRegister] || present[results.WorkloadSet] || present[results.WorkloadBank] {
		if ri == nil {
			ri = &regIndex{vals: newValIndex(0, 0)}
		}
		res.Checks = append(res.Checks, unlessRepeats(ri, NameRPO, func() Check { return checkRPO(ctx, h, ri, opts) }))
	}
	if present[results.WorkloadRegister] {
		res.Checks = append(res.Checks, unlessRepeats(ri, NameStaleRead, func() Check { return checkStaleReads(ctx, h, ri) }))
	}
	if present[results.WorkloadBank] {
		res.Checks = append(res.Checks, checkBank(ctx, h, opts))
	}
	// list-append (issue 15): Elle's dependency-graph check, listappend.go.
	if present[results.WorkloadAppend] {
		res.Checks = append(res.Checks, CheckListAppend(ctx, hist.Ops, opts))
	}
	res.Checks = append(res.Checks, checkAvailability(ctx, h))
	vs := make([]Verdict, len(res.Checks))
	for i, c := range res.Checks {
		vs[i] = c.Verdict
	}
	res.Verdict = Combine(vs...)
	res.Notes = notes(&res, hist, opts)
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

// notes explain the findings in plain sentences.
func notes(r *Result, hist *results.History, opts Options) []string {
	var out []string
	syncCommit := strings.ToLower(strings.TrimSpace(opts.Settings["synchronous_commit"]))
	if syncCommit == "" {
		syncCommit = "on"
	}
	standbys, hasStandbys := opts.Settings["synchronous_standby_names"]
	async := hasStandbys && strings.Trim(strings.TrimSpace(standbys), "'\"") == ""

	if r.Torn {
		out = append(out, fmt.Sprintf("The history ends in a torn line (line %d, the run was killed while writing it); it was checked up to that line.", hist.TornLine))
	}
	if c := r.Find(NameStaleRead); c != nil && c.StaleRead != nil && c.StaleRead.StaleCount > 0 {
		s := c.StaleRead
		msg := fmt.Sprintf("%d reads (%s) returned a value older than a write that had already been acknowledged, stale by up to %s (median %s).",
			s.StaleCount, countByNode(s.StaleByNode), fmtNS(s.MaxStaleNS), fmtNS(s.P50StaleNS))
		switch syncCommit {
		case "on", "remote_write", "local", "off":
			msg += fmt.Sprintf(" This is expected with synchronous_commit=%s: a commit is acknowledged once the synchronous standbys have written (on: flushed) its WAL, not once they have replayed it, so a standby can still serve the old value for a moment. The guide's promise that an acknowledged write is readable from the synchronous standbys does not hold with this setting; synchronous_commit=remote_apply waits for the standbys to replay the commit and would change it.", syncCommit)
		case "remote_apply":
			msg += " synchronous_commit=remote_apply should have prevented this (each commit waits for the standbys to replay it): this is a real violation, look at the node and the fault around each read."
		}
		out = append(out, msg)
	}
	if c := r.Find(NameRPO); c != nil && c.RPO != nil {
		p := c.RPO
		switch {
		case p.LostCount > 0:
			msg := fmt.Sprintf("%d acknowledged writes are missing from the final state: the promise that an acknowledged write is on the primary and on every synchronous standby and survives any promotion (RPO = 0) broke.", p.LostCount)
			if async {
				msg += " Replication was asynchronous (synchronous_standby_names is empty), so a commit was acknowledged before any standby had it and the promotion lost it."
			}
			if n := len(p.LostWithWarning); n > 0 {
				msg += fmt.Sprintf(" %d of them were acknowledged with the warning \"canceling wait for synchronous replication\": the wait for the standbys was cancelled and PostgreSQL reported success for a commit only the primary had.", n)
			}
			out = append(out, msg)
		case c.Verdict == Valid:
			msg := fmt.Sprintf("All %d acknowledged writes survived every promotion (RPO = 0).", p.Acknowledged)
			if p.AckedWithWarning > 0 {
				msg += fmt.Sprintf(" %d were acknowledged with the sync-wait warning and survived anyway.", p.AckedWithWarning)
			}
			out = append(out, msg)
		}
		if p.VanishedCount > 0 {
			out = append(out, fmt.Sprintf("%d reads returned a value that later disappeared from the cluster: clients saw a write that a failover then lost.", p.VanishedCount))
		}
		if p.UnexpectedCount > 0 {
			out = append(out, fmt.Sprintf("%d reads returned values no client ever wrote: the data was corrupted or the history does not match the database.", p.UnexpectedCount))
		}
		if len(p.Divergent) > 0 {
			out = append(out, fmt.Sprintf("After the run settled, %s did not hold the same data as the primary: that node would lose or resurrect writes if promoted.", strings.Join(p.Divergent, ", ")))
		}
		if c.Verdict == Unknown {
			out = append(out, "RPO could not be judged: "+c.Error+". Unknown is not a pass.")
		}
	}
	if c := r.Find(NameLinearizable); c != nil && c.Verdict == Unknown {
		out = append(out, fmt.Sprintf("The linearizability search did not finish: %s. The verdict is unknown, not valid; a longer --check-timeout may decide it.", c.Error))
	}
	if c := r.Find(NameBank); c != nil && c.Bank != nil && c.Verdict == Invalid {
		out = append(out, "The bank's invariant broke: "+c.Summary+".")
	}
	if r.Verdict == Valid {
		out = append(out, "Every check passed: no lost acknowledged write, no stale or non-linearizable read.")
	}
	return out
}
