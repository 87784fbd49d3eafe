package jepsen

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/strongcheck/strongcheck/results"
)

// WriteStats counts what WriteHistory wrote and left out.
type WriteStats struct {
	Ops     int // op maps written
	Skipped int // history entries with no Jepsen form (set-up entries of the harness)
}

// WriteHistory writes ops as a Jepsen history in EDN, one op map per line,
// as Jepsen's history.edn holds them:
//
//   - register operations as Knossos reads them, on independent keys:
//     {:type :ok, :f :write, :value [3 7], :process 0, :time 1234, :index 5}
//     (key "k3" is 3; a cas's value is [k [expected new]]);
//   - list-append transactions as Elle reads them:
//     {:f :txn, :value [[:append 1 2] [:r 1 [2]] [:r 3 nil]]};
//   - set adds and reads, bank transfers and reads by the same rule;
//   - nemesis steps as :info ops of process :nemesis with :value their
//     targets and :phase, :fault-id and :primary;
//   - the final reads of the settle step as an invoke and an ok of a
//     process number of their own (one per node, after the clients'), with
//     :final? true, so that Elle judges them as the last transactions;
//   - strongcheck's registers start at 0, Knossos's as nil: an ok write of
//     0 to every register key, with :init? true, comes first.
//
// Every op also carries :node, :error and :warning when strongcheck
// recorded them. Other harness entries (the bank's initial balances) have no
// Jepsen form and are skipped (counted in WriteStats).
func WriteHistory(w io.Writer, ops []results.Op) (WriteStats, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	var st WriteStats
	maxProc := results.Process(-1)
	for i := range ops {
		if ops[i].Process.IsClient() && ops[i].Process > maxProc {
			maxProc = ops[i].Process
		}
	}
	finalProc := map[string]int64{}
	index, last := int64(0), int64(0)
	emit := func(m Value, t int64) error {
		t = max(t, last)
		last = t
		m.Items = append(m.Items, KW("time"), I(t), KW("index"), I(index))
		index++
		st.Ops++
		if _, err := bw.WriteString(m.String()); err != nil {
			return err
		}
		return bw.WriteByte('\n')
	}
	// strongcheck's registers start at 0 where Knossos's start as nil.
	for _, m := range registerInits(ops, int64(maxProc)+1) {
		if err := emit(m, 0); err != nil {
			return st, fmt.Errorf("jepsen: write history: %w", err)
		}
		maxProc = results.Process(m.Get("process").Int)
	}
	for i := range ops {
		op := &ops[i]
		switch {
		case op.Process == results.NemesisProcess:
			if err := emit(nemesisOp(op), op.Time); err != nil {
				return st, fmt.Errorf("jepsen: write history: %w", err)
			}
		case op.Process.IsClient():
			m, ok := clientOp(op, I(int64(op.Process)))
			if !ok {
				st.Skipped++
				continue
			}
			if err := emit(m, op.Time); err != nil {
				return st, fmt.Errorf("jepsen: write history: %w", err)
			}
		case op.F == results.FFinal && op.Type != results.Invoke:
			p, ok := finalProc[op.Node]
			if !ok {
				p = int64(maxProc) + 1 + int64(len(finalProc))
				finalProc[op.Node] = p
			}
			inv, comp := finalOps(op, I(p))
			if inv.Kind == Nil {
				st.Skipped++
				continue
			}
			if err := emit(inv, op.Time-op.Latency); err != nil {
				return st, fmt.Errorf("jepsen: write history: %w", err)
			}
			if err := emit(comp, op.Time); err != nil {
				return st, fmt.Errorf("jepsen: write history: %w", err)
			}
		default:
			st.Skipped++ // the harness's final-read invokes and set-up entries
		}
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("jepsen: write history: %w", err)
	}
	return st, nil
}

// base is the map every op starts with.
func base(typ results.Type, proc Value, f string, value Value) Value {
	return Value{Kind: Map, Items: []Value{KW("type"), KW(string(typ)), KW("f"), KW(f), KW("value"), value, KW("process"), proc}}
}

// extra adds strongcheck's own fields.
func extra(m Value, op *results.Op) Value {
	if op.Node != "" {
		m.Items = append(m.Items, KW("node"), S(op.Node))
	}
	if op.Error != "" {
		m.Items = append(m.Items, KW("error"), S(op.Error))
	}
	if op.Warning != "" {
		m.Items = append(m.Items, KW("warning"), S(op.Warning))
	}
	return m
}

// keyValue is a register key as Jepsen writes it: "k3" is 3, other names
// stay strings.
func keyValue(k string) Value {
	if n, err := strconv.ParseInt(strings.TrimPrefix(k, "k"), 10, 64); err == nil && strings.HasPrefix(k, "k") {
		return I(n)
	}
	return S(k)
}

func intOrNil(p *int64) Value {
	if p == nil {
		return Value{}
	}
	return I(*p)
}

func ints(xs []int64) Value {
	v := Value{Kind: Vector, Items: make([]Value, len(xs))}
	for i, x := range xs {
		v.Items[i] = I(x)
	}
	return v
}

// TxnValue is a transaction as Elle writes it: [[:append k v] [:r k list]].
func TxnValue(txn []results.Mop) Value {
	v := Value{Kind: Vector, Items: make([]Value, len(txn))}
	for i, m := range txn {
		val := I(m.Value)
		if m.IsRead() {
			val = Value{}
			if m.Read != nil {
				val = ints(m.Read)
			}
		}
		v.Items[i] = Vec(KW(m.F), I(m.Key), val)
	}
	return v
}

// clientOp converts a client operation; false for one without a Jepsen
// form.
func clientOp(op *results.Op, proc Value) (Value, bool) {
	var f string
	var val Value
	switch {
	case op.F == results.FTxn:
		f, val = "txn", TxnValue(op.Txn)
	case op.Workload == results.WorkloadRegister && (op.F == results.FRead || op.F == results.FWrite):
		f, val = op.F, Vec(keyValue(op.Key), intOrNil(op.Value))
	case op.Workload == results.WorkloadRegister && op.F == results.FCAS:
		f, val = op.F, Vec(keyValue(op.Key), Vec(intOrNil(op.Expect), intOrNil(op.Value)))
	case op.Workload == results.WorkloadSet && op.F == results.FAdd:
		f, val = op.F, intOrNil(op.Value)
	case op.Workload == results.WorkloadSet && op.F == results.FRead:
		f = op.F
		if op.Type == results.OK {
			val = ints(op.Values)
		}
	case op.Workload == results.WorkloadBank && op.F == results.FTransfer && op.Transfer != nil:
		t := op.Transfer
		f, val = op.F, Value{Kind: Map, Items: []Value{KW("from"), I(int64(t.From)), KW("to"), I(int64(t.To)),
			KW("amount"), I(t.Amount), KW("id"), I(t.ID)}}
	case op.Workload == results.WorkloadBank && op.F == results.FRead:
		f = op.F
		if op.Type == results.OK {
			val = Value{Kind: Map}
			for i, b := range op.Values {
				val.Items = append(val.Items, I(int64(i)), I(b))
			}
		}
	default:
		return Value{}, false
	}
	return extra(base(op.Type, proc, f, val), op), true
}

// finalOps converts a final read into an invoke and its ok.
func finalOps(op *results.Op, proc Value) (inv, comp Value) {
	var f string
	var invVal, val Value
	switch op.Workload {
	case results.WorkloadAppend:
		f, val = "txn", TxnValue(op.Txn)
		blind := make([]results.Mop, len(op.Txn))
		for i, m := range op.Txn {
			blind[i] = results.ReadOf(m.Key, nil)
		}
		invVal = TxnValue(blind)
	case results.WorkloadRegister:
		f, val, invVal = results.FRead, Vec(keyValue(op.Key), intOrNil(op.Value)), Vec(keyValue(op.Key), Value{})
	case results.WorkloadSet:
		f, val = results.FRead, ints(op.Values)
	default:
		return Value{}, Value{}
	}
	fin := []Value{KW("final?"), {Kind: Bool, Bool: true}}
	inv = extra(base(results.Invoke, proc, f, invVal), &results.Op{Node: op.Node})
	inv.Items = append(inv.Items, fin...)
	comp = extra(base(op.Type, proc, f, val), op)
	comp.Items = append(comp.Items, fin...)
	return inv, comp
}

// nemesisOp converts a nemesis step: an :info op of :nemesis, as Jepsen
// writes them, keeping the phase, the fault id and the primary after it.
func nemesisOp(op *results.Op) Value {
	var targets Value = Vec()
	m := base(results.Info, KW("nemesis"), op.F, targets)
	if f := op.Fault; f != nil {
		for _, t := range f.Targets {
			targets.Items = append(targets.Items, S(t))
		}
		m.Items[5] = targets
		m.Items = append(m.Items, KW("phase"), KW(f.Phase), KW("fault-id"), I(int64(f.ID)))
		if f.Primary != "" {
			m.Items = append(m.Items, KW("primary"), S(f.Primary))
		}
	}
	if op.Type == results.Invoke {
		m.Items = append(m.Items, KW("invoke?"), Value{Kind: Bool, Bool: true})
	}
	return extra(m, op)
}

// registerInits are an ok write of 0 to every register key (an invoke and
// its ok each), one process each from proc on, marked :init? true.
func registerInits(ops []results.Op, proc int64) []Value {
	var out []Value
	for _, k := range registerKeys(ops) {
		w := Vec(keyValue(k), I(0))
		for _, typ := range []results.Type{results.Invoke, results.OK} {
			m := base(typ, I(proc), results.FWrite, w)
			m.Items = append(m.Items, KW("init?"), Value{Kind: Bool, Bool: true})
			out = append(out, m)
		}
		proc++
	}
	return out
}

// registerKeys lists the register keys in order of first appearance.
func registerKeys(ops []results.Op) []string {
	var keys []string
	seen := map[string]bool{}
	for i := range ops {
		op := &ops[i]
		if op.Workload == results.WorkloadRegister && op.Key != "" && op.F != results.FFinal && !seen[op.Key] {
			seen[op.Key] = true
			keys = append(keys, op.Key)
		}
	}
	return keys
}
