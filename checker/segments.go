package checker

import (
	"math"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// The linearizability search of one key is split where nothing is pending:
// at a quiescent point every earlier operation has returned and every later
// one is yet to be invoked, so every linearization of the whole is one of
// the part before followed by one of the part after, and all the second
// part needs of the first is the register's value there. The search carries
// the exact set of values each part can end with (asking porcupine whether
// the part followed by a read of a candidate value is legal), so the split
// search decides exactly what the whole search would, in memory that
// follows the longest part rather than the run.

// maxCarried bounds the values carried across a quiescent point; past it
// the point is not used and the parts on both sides are searched as one.
const maxCarried = 16

// searchFn runs porcupine on ops from initial value init, within the time
// left; ok is false when there is no time left.
type searchFn func(ops []porcupine.Operation, init int64) (porcupine.CheckResult, bool)

// segmentResult is the verdict on one key's operations, split.
type segmentResult struct {
	verdict porcupine.CheckResult
	// failing is the part porcupine found no legal order for (from every
	// value it could start with), and init the first of those values.
	failing []porcupine.Operation
	init    int64
	parts   int
}

// minPart is the fewest operations a part holds when it can: every search
// costs porcupine a fixed set-up, so quiescent points closer than that are
// not used.
var minPart = 64

// splitQuiescent cuts ops (sorted by Call) where nothing is pending, into
// parts of at least minPart operations where it can.
func splitQuiescent(ops []porcupine.Operation) [][]porcupine.Operation {
	var parts [][]porcupine.Operation
	start := 0
	maxRet := int64(math.MinInt64)
	for i := range ops {
		if i-start >= minPart && ops[i].Call > maxRet {
			parts = append(parts, ops[start:i])
			start = i
		}
		maxRet = max(maxRet, ops[i].Return)
	}
	if start < len(ops) {
		parts = append(parts, ops[start:])
	}
	return parts
}

// endCandidates are the values a part may leave in the register: those of
// its writes and cas that no other write of the part follows in real time
// (the last write linearized is one of them), and, when its writes may all
// have done nothing, the values it started with. A read that begins after
// every write of the part has returned pins the value.
func endCandidates(part []porcupine.Operation, starts []int64) []int64 {
	var lastWriteRet int64 = -1 << 62
	mustWrite := false
	for i := range part {
		op := part[i].Input.(*rop)
		if op.kind == opRead {
			continue
		}
		lastWriteRet = max(lastWriteRet, part[i].Return)
		mustWrite = mustWrite || op.ok()
	}
	// A read after every write: the value is the one it read.
	for i := len(part) - 1; i >= 0; i-- {
		if op := part[i].Input.(*rop); op.kind == opRead && part[i].Call > lastWriteRet {
			return []int64{op.value}
		}
	}
	// A write is followed when a write that certainly happened was invoked
	// after it returned: the latest such invocation decides for all.
	lastOkCall := int64(math.MinInt64)
	for i := range part {
		if op := part[i].Input.(*rop); op.kind != opRead && op.ok() {
			lastOkCall = max(lastOkCall, part[i].Call)
		}
	}
	var out []int64
	for i := range part {
		op := part[i].Input.(*rop)
		if op.kind == opRead || lastOkCall > part[i].Return || slices.Contains(out, op.value) {
			continue
		}
		out = append(out, op.value)
	}
	if !mustWrite {
		for _, s := range starts {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// sentinel is a read of v after every operation of part.
func sentinel(part []porcupine.Operation, v int64) porcupine.Operation {
	var end int64
	for i := range part {
		end = max(end, part[i].Return)
	}
	r := &rop{kind: opRead, value: v, hasValue: true, typ: tOK, call: -1}
	return porcupine.Operation{ClientId: 1 << 30, Input: r, Call: end + 1, Return: end + 2}
}

// searchSplit decides one key's operations part by part, carrying the
// values each part can end with.
func searchSplit(ops []porcupine.Operation, search searchFn) segmentResult {
	parts := splitQuiescent(ops)
	res := segmentResult{verdict: porcupine.Ok}
	starts := []int64{0}
	var carry []porcupine.Operation // parts merged because too many values were carried
	var buf []porcupine.Operation
	for pi, part := range parts {
		if len(carry) > 0 {
			part = append(carry, part...)
			carry = nil
		}
		res.parts++
		last := pi == len(parts)-1
		if len(part) == 1 {
			// One operation alone, decided without a search.
			ends, ok := single(part[0].Input.(*rop), starts)
			if !ok {
				res.verdict, res.failing, res.init = porcupine.Illegal, part, starts[0]
				return res
			}
			starts = ends
			continue
		}
		var ends []int64
		legal := false
		cands := endCandidates(part, starts)
		buf = buf[:0]
		for _, s := range starts {
			v, ok := search(part, s)
			if !ok || v == porcupine.Unknown {
				res.verdict = porcupine.Unknown
				return res
			}
			if v != porcupine.Ok {
				continue
			}
			legal = true
			if last {
				break
			}
			if len(cands) == 1 && len(starts) == 1 {
				ends = cands // a legal order exists, and it ends with the one candidate
				break
			}
			for _, c := range cands {
				if slices.Contains(ends, c) {
					continue
				}
				buf = append(append(buf[:0], part...), sentinel(part, c))
				v, ok := search(buf, s)
				if !ok || v == porcupine.Unknown {
					res.verdict = porcupine.Unknown
					return res
				}
				if v == porcupine.Ok {
					ends = append(ends, c)
				}
			}
		}
		if !legal {
			res.verdict, res.failing, res.init = porcupine.Illegal, part, starts[0]
			return res
		}
		if len(ends) > maxCarried && !last {
			carry = append([]porcupine.Operation(nil), part...)
			continue
		}
		starts = ends
	}
	return res
}

// withInit is the register model starting from value init.
func withInit(init int64) porcupine.Model {
	m := registerModel
	v := init
	m.Init = func() interface{} { return &v }
	return m
}

// timedSearch is a searchFn under a deadline (zero: none).
func timedSearch(deadline func() (time.Duration, bool)) searchFn {
	return func(ops []porcupine.Operation, init int64) (porcupine.CheckResult, bool) {
		r, ok := deadline()
		if !ok {
			return porcupine.Unknown, false
		}
		return porcupine.CheckOperationsTimeout(withInit(init), ops, r), true
	}
}

// single decides a part of one acknowledged operation from the values it
// may start with: a write leaves its value, a read or cas needs its value
// (the expected one) among them.
func single(op *rop, starts []int64) ([]int64, bool) {
	switch {
	case op.kind == opWrite && op.ok():
		return []int64{op.value}, true
	case op.kind == opRead && op.ok():
		return []int64{op.value}, slices.Contains(starts, op.value)
	case op.kind == opCAS && op.ok():
		return []int64{op.value}, slices.Contains(starts, op.expect)
	}
	// An operation that may not have happened cannot stand alone in a
	// part (it returns at infinity or at its first observation, later);
	// if one does, it may have done nothing or its write.
	out := append([]int64(nil), starts...)
	if op.kind != opRead && !slices.Contains(out, op.value) {
		out = append(out, op.value)
	}
	return out, true
}
