package elle

import (
	"math"

	"github.com/strongcheck/strongcheck/results"
)

// Compact completion types.
const (
	tOK uint8 = iota
	tInfo
	tFail
)

// never is the completion time of a transaction that did not complete ok:
// it precedes nothing in real time.
const never = math.MaxInt64

// txn is one list-append transaction of the history.
type txn struct {
	inv, comp   int32 // history indices of invoke and completion (-1: none)
	invT, compT int64 // compT is never unless the transaction completed ok
	proc        int32
	node        uint16 // index into index.nodes
	typ         uint8
	final       bool
	// mops are the completion's micro-operations when ok, else the
	// invoke's (reads unknown).
	mops []results.Mop
}

func (t *txn) ok() bool { return t.typ == tOK }

// index is the list-append view of a history.
type index struct {
	ops   []results.Op
	txns  []txn
	nodes []string
	notes []string
	// finalFailed names nodes whose final read failed.
	finalFailed []string
}

func (x *index) nodeIndex(n string) uint16 {
	for i, m := range x.nodes {
		if m == n {
			return uint16(i)
		}
	}
	x.nodes = append(x.nodes, n)
	return uint16(len(x.nodes) - 1)
}

// isAppendTxn reports whether op belongs to the list-append workload's
// client transactions.
func isAppendTxn(op *results.Op) bool {
	return op.F == results.FTxn && (op.Workload == results.WorkloadAppend || op.Workload == "")
}

// isAppendFinal reports whether op is a list-append final read.
func isAppendFinal(op *results.Op) bool {
	return op.F == results.FFinal && op.Workload == results.WorkloadAppend
}

// buildIndex pairs invokes with completions by process. A completion
// without an invoke (a final read, or a history that starts mid-way) is a
// transaction whose invoke time is its time less its latency.
func buildIndex(ops []results.Op) *index {
	x := &index{ops: ops, txns: make([]txn, 0, len(ops)/2+8)}
	open := map[results.Process]int32{} // process -> index into x.txns
	for i := range ops {
		op := &ops[i]
		switch {
		case isAppendFinal(op):
			x.final(i, op)
		case !isAppendTxn(op):
			// Another workload, the nemesis, the harness.
		case op.Type == results.Invoke:
			if j, ok := open[op.Process]; ok {
				// A second invoke: the first never completed.
				x.txns[j].typ = tInfo
			}
			open[op.Process] = int32(len(x.txns))
			x.txns = append(x.txns, txn{inv: int32(i), comp: -1, invT: op.Time, compT: never, proc: int32(op.Process),
				node: x.nodeIndex(op.Node), typ: tInfo, mops: op.Txn})
		default:
			j, ok := open[op.Process]
			if !ok {
				x.txns = append(x.txns, txn{inv: -1, invT: op.Time - op.Latency, proc: int32(op.Process), mops: op.Txn})
				j = int32(len(x.txns) - 1)
			}
			delete(open, op.Process)
			t := &x.txns[j]
			t.comp, t.typ = int32(i), tInfo
			switch op.Type {
			case results.OK:
				t.typ = tOK
			case results.Fail:
				t.typ = tFail
			}
			if op.Node != "" {
				t.node = x.nodeIndex(op.Node)
			}
			if t.typ == tOK {
				t.compT, t.mops = op.Time, op.Txn
			} else if t.inv >= 0 {
				t.mops = ops[t.inv].Txn
			}
		}
	}
	return x
}

// final records a final read: an ok one is a read-only transaction; a
// failed one is noted.
func (x *index) final(i int, op *results.Op) {
	switch op.Type {
	case results.Invoke:
		return // the harness's invoke; the completion carries the reads
	case results.OK:
		x.txns = append(x.txns, txn{inv: -1, comp: int32(i), invT: op.Time - op.Latency, compT: op.Time,
			proc: int32(op.Process), node: x.nodeIndex(op.Node), typ: tOK, final: true, mops: op.Txn})
	default:
		x.finalFailed = append(x.finalFailed, op.Node)
	}
}

// txnIndex is the history index of transaction t's invoke (its completion
// when it has none).
func (x *index) txnIndex(t int32) int64 {
	if i := x.txns[t].inv; i >= 0 {
		return x.ops[i].Index
	}
	return x.ops[x.txns[t].comp].Index
}
