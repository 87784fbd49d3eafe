package histgen

import (
	"cmp"
	"container/heap"
	"math/rand/v2"
	"slices"

	"github.com/strongcheck/strongcheck/results"
)

// Txn is one transaction of a made-up history: process, node, invoke
// and completion times (Comp < 0: it never completed), how it ended and its
// micro-operations as the completion reports them (for info and fail the
// reads are dropped from the history, as the workload records them).
type Txn struct {
	Process   int
	Node      string
	Inv, Comp int64
	Type      results.Type
	Mops      []results.Mop
	// Final makes it a final read of the settle step (process harness,
	// one completion without an invoke).
	Final bool
}

// Layout turns transactions into a history: an invoke (reads unknown) and
// a completion per transaction, in time order, as the harness records
// them.
func Layout(txns []Txn) []results.Op {
	type ev struct {
		t  int64
		op results.Op
	}
	evs := make([]ev, 0, 2*len(txns))
	for _, t := range txns {
		if t.Final {
			evs = append(evs, ev{t.Comp, results.Op{Process: results.HarnessProcess, Type: results.OK, F: results.FFinal,
				Workload: results.WorkloadAppend, Node: t.Node, Txn: t.Mops, Latency: t.Comp - t.Inv}})
			continue
		}
		invm := make([]results.Mop, len(t.Mops))
		for i, m := range t.Mops {
			invm[i] = m
			if m.IsRead() {
				invm[i].Read = nil
			}
		}
		evs = append(evs, ev{t.Inv, results.Op{Process: results.Process(t.Process), Type: results.Invoke, F: results.FTxn,
			Workload: results.WorkloadAppend, Node: t.Node, Txn: invm}})
		if t.Comp < 0 {
			continue
		}
		comp := results.Op{Process: results.Process(t.Process), Type: t.Type, F: results.FTxn, Workload: results.WorkloadAppend,
			Node: t.Node, Txn: t.Mops, Latency: t.Comp - t.Inv}
		if t.Type != results.OK {
			comp.Txn = invm
		}
		evs = append(evs, ev{t.Comp, comp})
	}
	slices.SortStableFunc(evs, func(a, b ev) int { return cmp.Compare(a.t, b.t) })
	ops := make([]results.Op, len(evs))
	for i := range evs {
		op := &evs[i].op
		op.V, op.Index, op.Time = results.SchemaVersion, int64(i), evs[i].t
		ops[i] = *op
	}
	return ops
}

// TxnOptions shape Txns. Zero fields take the defaults in brackets.
type TxnOptions struct {
	Processes       int      // concurrent clients [10]
	Keys            int      // keys in use at a time [5]
	MaxWritesPerKey int      // appends after which a key retires for a new one [32]
	MaxMops         int      // micro-operations per transaction, 1 to MaxMops [4]
	InfoRate        float64  // share of transactions that end info [0.05]
	FailRate        float64  // share that fail [0.02]
	Nodes           []string // read-only transactions go to any, the others to the first [n1 n2 n3]
	// Final adds a final read of every key on every node after the run.
	Final bool
	// Stale is the share of read-only transactions that read a snapshot
	// older than their invoke (up to StaleNS old), as a lagging standby
	// serves: the history stays serializable but not strict serializable.
	Stale   float64
	StaleNS int64
	// KeyBase, ValueBase, TimeBase and ProcessBase shift keys, elements,
	// times and process numbers, so that several generated histories can
	// share one.
	KeyBase, ValueBase, TimeBase int64
	ProcessBase                  int
}

func (o *TxnOptions) defaults() {
	if o.Processes <= 0 {
		o.Processes = 10
	}
	if o.Keys <= 0 {
		o.Keys = 5
	}
	if o.MaxWritesPerKey <= 0 {
		o.MaxWritesPerKey = 32
	}
	if o.MaxMops <= 0 {
		o.MaxMops = 4
	}
	if o.InfoRate == 0 {
		o.InfoRate = 0.05
	}
	if o.FailRate == 0 {
		o.FailRate = 0.02
	}
	if len(o.Nodes) == 0 {
		o.Nodes = []string{"n1", "n2", "n3"}
	}
	if o.StaleNS <= 0 {
		o.StaleNS = 20_000_000
	}
}

// Txns returns n transactions of a strict serializable history, driven
// by seed, as Elle's list-append generator draws them: each transaction
// appends unique elements to and reads keys of a small rotating set (a key
// retires after MaxWritesPerKey appends, so lists stay short) and takes
// effect atomically at a random instant between its invoke and its
// completion. An info transaction took effect or not (half each); the
// client then goes on under a new process number. A failed one did not.
// Reads share the state's memory (lists only grow), so a million
// transactions fit in little more than their micro-operations.
func Txns(seed int64, n int, o TxnOptions) []Txn {
	o.defaults()
	g := &generator{o: o, rng: rand.New(rand.NewPCG(uint64(seed), 77)), state: map[int64][]int64{},
		grew: map[int64][]int64{}, active: make([]int64, o.Keys), writes: make([]int, o.Keys)}
	for i := range g.active {
		g.active[i] = o.KeyBase + int64(i)
	}
	g.nextKey = o.KeyBase + int64(o.Keys)
	g.nextVal = o.ValueBase + 1
	out := make([]Txn, 0, n+len(o.Nodes))
	for p := range o.Processes {
		g.push(o.ProcessBase+p, o.TimeBase, &n)
	}
	for g.q.Len() > 0 {
		e := heap.Pop(&g.q).(genEvent)
		switch e.kind {
		case txnApply:
			g.apply(e.t, e.at)
		case txnComplete:
			t := &e.t.Txn
			proc := t.Process
			if t.Type == results.Info {
				proc = o.ProcessBase + o.Processes + g.retired
				g.retired++
			}
			out = append(out, *t)
			g.push(proc, t.Comp+int64(g.rng.IntN(100_000)), &n)
		}
	}
	if o.Final {
		end := o.TimeBase
		for _, t := range out {
			end = max(end, t.Comp)
		}
		var keys []int64
		for k := range g.state {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, node := range o.Nodes {
			mops := make([]results.Mop, len(keys))
			for j, k := range keys {
				l := g.state[k]
				mops[j] = results.ReadOf(k, l[:len(l):len(l)])
			}
			at := end + int64(i+1)*1_000_000
			out = append(out, Txn{Process: int(results.HarnessProcess), Node: node, Inv: at, Comp: at + 500_000,
				Type: results.OK, Mops: mops, Final: true})
		}
	}
	return out
}

// ListAppend is Layout(Txns(seed, n, o)).
func ListAppend(seed int64, n int, o TxnOptions) []results.Op { return Layout(Txns(seed, n, o)) }

type generator struct {
	o       TxnOptions
	rng     *rand.Rand
	q       genQueue
	state   map[int64][]int64
	grew    map[int64][]int64 // per key, the time of each append (for stale reads)
	active  []int64
	writes  []int
	nextKey int64
	nextVal int64
	retired int
	started int
}

type pendingTxn struct {
	Txn
	applied bool
	stale   int64 // read a snapshot this much older than the instant it took effect
}

// push draws the next transaction of proc, invoked at t, unless n are out.
func (g *generator) push(proc int, t int64, n *int) {
	if g.started >= *n {
		return
	}
	g.started++
	o := &g.o
	size := 1 + g.rng.IntN(o.MaxMops)
	mops := make([]results.Mop, size)
	readOnly := true
	for i := range mops {
		slot := g.rng.IntN(len(g.active))
		k := g.active[slot]
		if g.rng.IntN(2) == 0 {
			mops[i] = results.ReadOf(k, nil)
			continue
		}
		readOnly = false
		mops[i] = results.Append(k, g.nextVal)
		g.nextVal++
		if g.writes[slot]++; g.writes[slot] >= o.MaxWritesPerKey {
			g.active[slot], g.writes[slot] = g.nextKey, 0
			g.nextKey++
		}
	}
	node := o.Nodes[0]
	if readOnly {
		node = o.Nodes[g.rng.IntN(len(o.Nodes))]
	}
	typ := results.OK
	switch x := g.rng.Float64(); {
	case x < o.InfoRate:
		typ = results.Info
	case x < o.InfoRate+o.FailRate:
		typ = results.Fail
	}
	apply := t + int64(100_000+g.rng.IntN(1_000_000))
	comp := apply + int64(100_000+g.rng.IntN(1_000_000))
	p := &pendingTxn{Txn: Txn{Process: proc, Node: node, Inv: t, Comp: comp, Type: typ, Mops: mops}}
	if readOnly && g.rng.Float64() < o.Stale {
		p.stale = 1 + g.rng.Int64N(o.StaleNS)
	}
	heap.Push(&g.q, genEvent{at: apply, kind: txnApply, t: p})
	heap.Push(&g.q, genEvent{at: comp, kind: txnComplete, t: p})
}

// apply runs p atomically on the state: appends extend their lists, reads
// see the lists as they are at that instant.
func (g *generator) apply(p *pendingTxn, at int64) {
	if p.Type == results.Fail || p.Type == results.Info && g.rng.IntN(2) == 0 {
		return
	}
	for i, m := range p.Mops {
		l := g.state[m.Key]
		if m.IsRead() {
			n := len(l)
			if p.stale > 0 {
				// The list as it was stale ns ago: appends are in time order.
				times := g.grew[m.Key]
				n, _ = slices.BinarySearch(times, at-p.stale+1)
			}
			p.Mops[i].Read = l[:n:n]
			continue
		}
		g.state[m.Key] = append(l, m.Value)
		g.grew[m.Key] = append(g.grew[m.Key], at)
	}
	p.applied = true
}

const (
	txnApply = iota
	txnComplete
)

type genEvent struct {
	at   int64
	kind int
	t    *pendingTxn
}

type genQueue []genEvent

func (q genQueue) Len() int { return len(q) }
func (q genQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].kind < q[j].kind
}
func (q genQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *genQueue) Push(x any)   { *q = append(*q, x.(genEvent)) }
func (q *genQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}
