package histgen

import (
	"container/heap"
	"fmt"
	"math/rand"

	"github.com/strongcheck/strongcheck/results"
)

// RegisterOptions shapes a generated register history (Register). Zero fields take the
// defaults in brackets.
type RegisterOptions struct {
	Keys      int      // registers k0..k<Keys-1> [100]
	Processes int      // concurrent client workers [10]
	InfoRate  float64  // share of operations that end info [0.1]
	Nodes     []string // nodes serving reads; writes go to the first [n1 n2 n3]
	// Final adds final reads of every key on every node after the run.
	Final bool
}

// Register returns a register history of n client operations
// (2n invoke and completion entries, plus final reads if asked), driven by
// seed, that is linearizable by construction: every operation takes effect
// at a random instant between its invoke and its completion, on one
// sequential register per key. Reads are ~50 %, writes ~30 %, cas ~20 %;
// values are unique and positive. An info operation took effect or not at
// random (half each); the worker then continues under a new process number.
// A cas whose expected value did not match ends fail. It is meant for tests
// and benchmarks of the checkers.
func Register(seed int64, n int, o RegisterOptions) []results.Op {
	if o.Keys <= 0 {
		o.Keys = 100
	}
	if o.Processes <= 0 {
		o.Processes = 10
	}
	if o.InfoRate == 0 {
		o.InfoRate = 0.1
	}
	if len(o.Nodes) == 0 {
		o.Nodes = []string{"n1", "n2", "n3"}
	}
	g := &regGen{o: o, n: n, rng: rand.New(rand.NewSource(seed)), keys: make([]string, o.Keys), state: make([]int64, o.Keys),
		out: make([]results.Op, 0, 2*n+2*o.Keys*len(o.Nodes)+2), nextValue: 1, nextProc: results.Process(o.Processes)}
	for i := range g.keys {
		g.keys[i] = fmt.Sprintf("k%d", i)
	}
	for w := range o.Processes {
		g.schedule(w, results.Process(w), g.rng.Int63n(1_000_000))
	}
	for g.q.Len() > 0 {
		e := heap.Pop(&g.q).(event)
		p := e.p.(*genPending)
		switch e.kind {
		case evInvoke:
			g.invoke(e)
		case evTakeEffect:
			g.takeEffect(p)
		default:
			g.complete(e.worker, p)
		}
	}
	if o.Final {
		g.finalReads()
	}
	return g.out
}

// regGen is Register's state: the registers, the queue of
// events in time order and the history so far.
type regGen struct {
	o         RegisterOptions
	n         int // operations to start
	rng       *rand.Rand
	keys      []string
	state     []int64 // each register's value
	out       []results.Op
	q         eventQueue
	nextValue int64
	nextProc  results.Process
	started   int
}

// genPending is one generated operation between its invoke and its
// completion.
type genPending struct {
	proc      results.Process
	f         string
	key       int
	value     int64 // write/cas: new value; read: value read
	expect    int64
	node      string
	inv, comp int64
	info      bool // ends info
	applied   bool // cas: matched
}

func (g *regGen) emit(op results.Op) {
	op.V = results.SchemaVersion
	op.Index = int64(len(g.out))
	op.Workload = results.WorkloadRegister
	g.out = append(g.out, op)
}

// schedule queues the next operation of a worker; its invoke is emitted
// when the queue reaches it, so entries stay in time order.
func (g *regGen) schedule(worker int, proc results.Process, t int64) {
	if g.started >= g.n {
		return
	}
	g.started++
	heap.Push(&g.q, event{t: t, worker: worker, kind: evInvoke, p: &genPending{proc: proc, inv: t}})
}

// invoke draws the operation, emits its invoke and queues the instant it
// takes effect (unless an info operation did not) and its completion.
func (g *regGen) invoke(e event) {
	p, rng := e.p.(*genPending), g.rng
	p.key, p.node = rng.Intn(g.o.Keys), g.o.Nodes[0]
	switch r := rng.Float64(); {
	case r < 0.5:
		p.f = results.FRead
		p.node = g.o.Nodes[rng.Intn(len(g.o.Nodes))]
	case r < 0.8:
		p.f = results.FWrite
		p.value = g.nextValue
		g.nextValue++
	default:
		p.f = results.FCAS
		p.value = g.nextValue
		g.nextValue++
		p.expect = g.state[p.key] // the value the worker believes current
	}
	p.info = rng.Float64() < g.o.InfoRate
	dur := 200_000 + rng.Int63n(3_000_000) // 0.2 to 3.2 ms
	p.comp = p.inv + dur
	op := results.Op{Time: p.inv, Process: p.proc, Type: results.Invoke, F: p.f, Key: g.keys[p.key]}
	if p.f != results.FRead {
		op.Value = results.Int(p.value)
	}
	if p.f == results.FCAS {
		op.Expect = results.Int(p.expect)
	}
	g.emit(op)
	if !p.info || rng.Intn(2) == 0 {
		heap.Push(&g.q, event{t: p.inv + 1 + rng.Int63n(dur-1), worker: e.worker, kind: evTakeEffect, p: p})
	}
	heap.Push(&g.q, event{t: p.comp, worker: e.worker, kind: evComplete, p: p})
}

// takeEffect applies the operation to its register.
func (g *regGen) takeEffect(p *genPending) {
	switch p.f {
	case results.FRead:
		p.value = g.state[p.key]
	case results.FWrite:
		g.state[p.key] = p.value
	case results.FCAS:
		if g.state[p.key] == p.expect {
			g.state[p.key] = p.value
			p.applied = true
		}
	}
}

// complete emits the operation's completion and schedules the worker's
// next one, under a new process after an info.
func (g *regGen) complete(worker int, p *genPending) {
	op := results.Op{Time: p.comp, Process: p.proc, F: p.f, Key: g.keys[p.key], Node: p.node, Latency: p.comp - p.inv, Type: results.OK}
	switch {
	case p.info:
		op.Type = results.Info
		op.Error = "timeout"
	case p.f == results.FCAS && !p.applied:
		op.Type = results.Fail
	case p.f == results.FRead:
		op.Value = results.Int(p.value)
	}
	if p.f != results.FRead && op.Type != results.Fail {
		op.Value = results.Int(p.value)
	}
	g.emit(op)
	proc := p.proc
	if p.info {
		proc = g.nextProc
		g.nextProc++
	}
	g.schedule(worker, proc, p.comp+1+g.rng.Int63n(100_000))
}

// finalReads emits a final read of every key on every node, 1 ms after
// the last operation.
func (g *regGen) finalReads() {
	t := int64(0)
	if len(g.out) > 0 {
		t = g.out[len(g.out)-1].Time + 1_000_000
	}
	for _, node := range g.o.Nodes {
		for k, key := range g.keys {
			g.emit(results.Op{Time: t, Process: results.HarnessProcess, Type: results.Invoke, F: results.FFinal, Key: key, Node: node})
			t += 1000
			g.emit(results.Op{Time: t, Process: results.HarnessProcess, Type: results.OK, F: results.FFinal, Key: key, Node: node, Value: results.Int(g.state[k])})
			t += 1000
		}
	}
}

// Generator event kinds, in the order they run at equal times.
const (
	evInvoke = iota
	evTakeEffect
	evComplete
)

// event is an invoke, the instant an operation takes effect, or a
// completion, in the generator.
type event struct {
	t      int64
	worker int
	kind   int
	p      any
}

type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].t != q[j].t {
		return q[i].t < q[j].t
	}
	return q[i].kind < q[j].kind
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}
