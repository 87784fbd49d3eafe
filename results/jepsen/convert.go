package jepsen

import (
	"fmt"
	"strconv"

	"github.com/strongcheck/strongcheck/results"
)

// convert turns Jepsen ops into a strongcheck history of one model (""
// for the one they have).
func convert(ops []jop, model string) (*History, error) {
	h := &History{}
	reg, txn := false, false
	for i := range ops {
		switch ops[i].f {
		case "read", "write", "cas":
			reg = reg || ops[i].proc.IsClient()
		case "txn":
			txn = true
		}
	}
	switch {
	case model != "":
		h.Model = model
		if model == ModelRegister && !reg || model == ModelListAppend && !txn {
			return nil, fmt.Errorf("%w: no operation of the %s model", ErrHistory, model)
		}
	case reg && txn:
		return nil, fmt.Errorf("%w: it mixes register operations and list-append transactions: choose one model", ErrHistory)
	case !reg && !txn:
		return nil, fmt.Errorf("%w: no register operation (:read, :write, :cas) and no list-append transaction (:txn)", ErrHistory)
	case txn:
		h.Model = ModelListAppend
	default:
		h.Model = ModelRegister
	}
	timed := true
	for i := range ops {
		timed = timed && ops[i].hasTime
	}
	c := &converter{h: h, timed: timed, independent: independent(ops), keys: map[string]int64{}}
	if h.Model == ModelRegister {
		c.registerInit(ops)
	}
	open := map[results.Process]int{} // process -> index of its open invoke in ops
	skipped := 0
	for i := range ops {
		op := &ops[i]
		var inv *jop
		if op.proc.IsClient() && op.typ != results.Invoke {
			if j, ok := open[op.proc]; ok {
				inv = &ops[j]
				delete(open, op.proc)
			}
		}
		if op.proc.IsClient() && op.typ == results.Invoke {
			open[op.proc] = i
		}
		out, ok, err := c.op(i, op, inv)
		if err != nil {
			return nil, fmt.Errorf("%w: op %d: %w", ErrHistory, i, err)
		}
		if !ok {
			skipped++
			continue
		}
		c.emit(out)
	}
	if skipped > 0 {
		h.Notes = append(h.Notes, fmt.Sprintf("%d operations of other functions or of final reads' invokes were left out", skipped))
	}
	if c.renamed > 0 {
		h.Notes = append(h.Notes, fmt.Sprintf("%d list-append keys that are not integers were numbered in order of appearance", c.renamed))
	}
	return h, nil
}

type converter struct {
	h           *History
	timed       bool
	independent bool
	sentinel    int64
	keys        map[string]int64 // non-integer list-append keys
	renamed     int
}

func (c *converter) emit(op results.Op) {
	op.V, op.Index = results.SchemaVersion, int64(len(c.h.Ops))
	c.h.Ops = append(c.h.Ops, op)
}

// independent reports whether register ops carry [key value] tuples:
// Jepsen's independent keys. A plain cas also has a pair, [old new]; an
// independent cas has [k [old new]].
func independent(ops []jop) bool {
	for i := range ops {
		op := &ops[i]
		if !op.proc.IsClient() {
			continue
		}
		v := op.value
		switch op.f {
		case "read", "write":
			if v.Seq() {
				return len(v.Items) == 2
			}
			if !v.IsNil() {
				return false
			}
		case "cas":
			if v.Seq() && len(v.Items) == 2 {
				return v.Items[1].Seq()
			}
		}
	}
	return false
}

// registerInit writes Jepsen's initial nil of every register key as an ok
// write, before everything, of a value below every value the history uses.
func (c *converter) registerInit(ops []jop) {
	lo := int64(0)
	var keys []string
	seen := map[string]bool{}
	for i := range ops {
		op := &ops[i]
		if !op.proc.IsClient() || op.f != "read" && op.f != "write" && op.f != "cas" {
			continue
		}
		k, v := c.split(op)
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
		walkInts(v, func(n int64) { lo = min(lo, n) })
	}
	c.sentinel = lo - 1
	first := int64(0)
	if len(ops) > 0 && c.timed {
		first = ops[0].time
	}
	proc := results.Process(0)
	for i := range ops {
		if ops[i].proc >= proc {
			proc = ops[i].proc + 1
		}
	}
	for _, k := range keys {
		w := results.Op{Process: proc, Type: results.Invoke, F: results.FWrite, Workload: results.WorkloadRegister, Key: k,
			Value: results.Int(c.sentinel), Time: first - 2}
		c.emit(w)
		w.Type, w.Time = results.OK, first-1
		c.emit(w)
		proc++
	}
	c.h.Notes = append(c.h.Notes, fmt.Sprintf("Jepsen's registers start as nil: an ok write of %d before everything stands for it on each of the %d keys (reads of nil read %d)",
		c.sentinel, len(keys), c.sentinel))
}

func walkInts(v Value, f func(int64)) {
	switch v.Kind {
	case Int:
		f(v.Int)
	case Vector, List, Set, Map:
		for _, it := range v.Items {
			walkInts(it, f)
		}
	}
}

// split is a register op's key and the rest of its value.
func (c *converter) split(op *jop) (string, Value) {
	if !c.independent {
		return "r", op.value
	}
	if !op.value.Seq() || len(op.value.Items) != 2 {
		return "r", op.value
	}
	k := op.value.Items[0]
	if k.Kind == Int {
		return "k" + strconv.FormatInt(k.Int, 10), op.value.Items[1]
	}
	return k.Str, op.value.Items[1]
}

func (c *converter) time(i int, op *jop) int64 {
	if c.timed {
		return op.time
	}
	return int64(i) * 1000
}

// op converts one Jepsen op (inv: its invoke, for a completion); false
// for an op left out.
func (c *converter) op(i int, op *jop, inv *jop) (results.Op, bool, error) {
	out := results.Op{Process: op.proc, Type: op.typ, F: op.f, Time: c.time(i, op), Node: op.node, Error: op.err}
	if op.proc == results.NemesisProcess {
		out.Workload = results.WorkloadNemesis
		phase := op.phase
		if phase == "" {
			phase = results.PhaseInfo
		}
		out.Fault = &results.Fault{ID: int(op.fault), Kind: op.f, Phase: phase, Primary: op.primary}
		for _, t := range op.value.Items {
			if t.Kind == String || t.Kind == Keyword {
				out.Fault.Targets = append(out.Fault.Targets, t.Str)
			}
		}
		return out, true, nil
	}
	if c.h.Model == ModelRegister {
		// A final read of a register is a read like any other.
		return c.registerOp(op, inv, out)
	}
	if op.final {
		if op.typ == results.Invoke {
			return out, false, nil // the final read is one completion here
		}
		out.Process, out.F = results.HarnessProcess, results.FFinal
	}
	return c.txnOp(op, inv, out)
}

// registerOp converts :read, :write and :cas; a completion takes the
// written values from its invoke (an info completion often holds
// :timed-out instead).
func (c *converter) registerOp(op *jop, inv *jop, out results.Op) (results.Op, bool, error) {
	if op.f != "read" && op.f != "write" && op.f != "cas" {
		return out, false, nil
	}
	out.Workload = results.WorkloadRegister
	k, v := c.split(op)
	out.Key = k
	src := v
	if inv != nil && op.f != "read" {
		_, src = c.split(inv)
	}
	switch op.f {
	case "read":
		if op.typ == results.OK {
			n, err := c.regValue(v)
			if err != nil {
				return out, false, err
			}
			out.Value = results.Int(n)
		}
	case "write":
		n, err := c.regValue(src)
		if err != nil {
			return out, false, err
		}
		out.Value = results.Int(n)
	case "cas":
		if !src.Seq() || len(src.Items) != 2 {
			return out, false, fmt.Errorf("cas value %s: want [old new]", short(src))
		}
		from, err := c.regValue(src.Items[0])
		if err != nil {
			return out, false, err
		}
		to, err := c.regValue(src.Items[1])
		if err != nil {
			return out, false, err
		}
		out.Expect, out.Value = results.Int(from), results.Int(to)
	}
	return out, true, nil
}

// regValue is a register value: an integer, or nil, the initial state.
func (c *converter) regValue(v Value) (int64, error) {
	switch v.Kind {
	case Int:
		return v.Int, nil
	case Nil:
		return c.sentinel, nil
	}
	return 0, fmt.Errorf("register value %s: want an integer or nil", short(v))
}

// txnOp converts a :txn; info and fail completions take their invoke's
// micro-operations (their reads are unknown).
func (c *converter) txnOp(op *jop, inv *jop, out results.Op) (results.Op, bool, error) {
	if op.f != "txn" {
		return out, false, nil
	}
	out.Workload = results.WorkloadAppend
	if out.F != results.FFinal {
		out.F = results.FTxn
	}
	src := op.value
	if op.typ != results.OK && op.typ != results.Invoke && inv != nil {
		src = inv.value
	}
	txn, err := c.mops(src, op.typ == results.OK)
	if err != nil {
		return out, false, err
	}
	out.Txn = txn
	return out, true, nil
}

func (c *converter) mops(v Value, keepReads bool) ([]results.Mop, error) {
	if !v.Seq() {
		return nil, fmt.Errorf("txn value %s: want a vector of [f k v]", short(v))
	}
	out := make([]results.Mop, 0, len(v.Items))
	for _, m := range v.Items {
		if !m.Seq() || len(m.Items) != 3 {
			return nil, fmt.Errorf("micro-operation %s: want [f k v]", short(m))
		}
		f, k, val := m.Items[0], m.Items[1], m.Items[2]
		key, err := c.key(k)
		if err != nil {
			return nil, err
		}
		switch {
		case f.IsKW("append"):
			if val.Kind != Int {
				return nil, fmt.Errorf("append %s: the element must be an integer", short(m))
			}
			out = append(out, results.Append(key, val.Int))
		case f.IsKW("r"):
			var list []int64
			if keepReads && val.Seq() {
				list = make([]int64, 0, len(val.Items))
				for _, e := range val.Items {
					if e.Kind != Int {
						return nil, fmt.Errorf("read %s: elements must be integers", short(m))
					}
					list = append(list, e.Int)
				}
			}
			out = append(out, results.ReadOf(key, list))
		default:
			return nil, fmt.Errorf("micro-operation %s: only :append and :r (list-append) are read", short(m))
		}
	}
	return out, nil
}

// key is a list-append key: an integer as it is, anything else (a string,
// a keyword) numbered -1, -2, ... in order of appearance.
func (c *converter) key(k Value) (int64, error) {
	if k.Kind == Int {
		return k.Int, nil
	}
	if k.Kind != String && k.Kind != Keyword && k.Kind != Symbol {
		return 0, fmt.Errorf("key %s: want an integer, a string or a keyword", short(k))
	}
	name := k.String()
	if n, ok := c.keys[name]; ok {
		return n, nil
	}
	n := int64(-1 - len(c.keys))
	c.keys[name] = n
	c.renamed++
	return n, nil
}
