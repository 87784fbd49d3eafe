package elle

import "github.com/strongcheck/strongcheck/results"

// Fekete's read-only anomaly (Fekete, O'Neil and O'Neil, "A Read-Only
// Transaction Anomaly Under Snapshot Isolation", SIGMOD Record 2004) is the
// three-transaction cycle that snapshot isolation allows and serializable
// snapshot isolation must stop:
//
//	T1 -rw-> T2 -wr-> T3 -rw-> T1
//
// T1 (the pivot) reads a key without T2's append and appends to another;
// T2 appends to the first key and commits; T3 only reads, sees T2's append
// and misses T1's. Each pair alone has a serial order; the three have none.
// PostgreSQL's serializable level lets it through when T1 commits and T3
// takes its snapshot inside T2's commit (after T2 became visible, before
// SSI marked it committed): README's "A PostgreSQL SSI bug" has the
// mechanism and a reproduction. The same window lets through its
// read-write twin, a T3 that also appends to other keys and reads B after
// T2's commit has finished; ReadOnlyAnomaly takes both.

// ReadOnlyRoles names the transactions of a read-only anomaly by their
// index in Case.Txns.
type ReadOnlyRoles struct {
	Pivot  int // T1: read what Writer then appended, appended what Reader missed
	Writer int // T2: its append was read by Reader and missed by Pivot
	Reader int // T3: read Writer's append and missed Pivot's
}

// ReadOnlyAnomaly reports whether c is a cycle of exactly the read-only
// anomaly's shape, and which transaction plays which part: three
// transactions that all committed (ok, none a final read), the cycle
// Pivot -rw-> Writer -wr-> Reader -rw-> Pivot (the Reader read only, or
// also appended elsewhere: the read-write twin), and a Pivot and a Reader
// that both began before the Writer's commit was acknowledged (the
// Writer's commit was still in progress while the others ran). Any other
// cycle, longer or with other edges, is not one.
func ReadOnlyAnomaly(c Case) (ReadOnlyRoles, bool) {
	if len(c.Txns) != 3 || len(c.Cycle) != 3 {
		return ReadOnlyRoles{}, false
	}
	next := map[int]Step{}
	var r ReadOnlyRoles
	wr := 0
	for _, s := range c.Cycle {
		if s.From < 0 || s.From >= 3 || s.To < 0 || s.To >= 3 {
			return ReadOnlyRoles{}, false
		}
		next[s.From] = s
		if s.Rel == WR {
			wr++
			r.Writer, r.Reader = s.From, s.To
		}
	}
	if wr != 1 || len(next) != 3 {
		return ReadOnlyRoles{}, false
	}
	back := next[r.Reader]
	if back.Rel != RW {
		return ReadOnlyRoles{}, false
	}
	r.Pivot = back.To
	if out := next[r.Pivot]; out.Rel != RW || out.To != r.Writer || r.Pivot == r.Writer || r.Pivot == r.Reader {
		return ReadOnlyRoles{}, false
	}
	for _, t := range c.Txns {
		if t.Type != string(results.OK) || t.Final {
			return ReadOnlyRoles{}, false
		}
	}
	p, w, rd := c.Txns[r.Pivot], c.Txns[r.Writer], c.Txns[r.Reader]
	if !writes(p.Txn) || !writes(w.Txn) {
		return ReadOnlyRoles{}, false
	}
	if p.InvokeNS >= w.CompleteNS || rd.InvokeNS >= w.CompleteNS {
		return ReadOnlyRoles{}, false
	}
	return r, true
}
