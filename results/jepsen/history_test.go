package jepsen_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/checker/elle"
	"github.com/strongcheck/strongcheck/internal/histgen"
	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/results/jepsen"
)

// The oracle: porcupine on the log's events, read here with regular
// expressions independently of package jepsen, with a Knossos cas-register
// (it starts as nil; a :fail op did not happen; an op without an ok
// completion may have happened any time after its invoke). With
// failedCASObserves, a failed cas instead says the register did not hold
// its old value, as porcupine's own etcd test model judges it.
type casInput struct {
	op       string
	arg, new *int64
}

type casOutput struct {
	value *int64 // read
	ok    bool   // cas: matched
	known bool   // completed ok (or fail, for a cas)
}

func eq(a, b *int64) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func casModel(failedCASObserves bool) porcupine.Model {
	return porcupine.Model{
		Init: func() interface{} { return (*int64)(nil) },
		Step: func(state, input, output interface{}) (bool, interface{}) {
			s, in, out := state.(*int64), input.(casInput), output.(casOutput)
			switch in.op {
			case "read":
				return !out.known || eq(out.value, s), s
			case "write":
				return true, in.arg
			}
			if eq(s, in.arg) {
				return !out.known || out.ok, in.new
			}
			return !out.known || !out.ok, s
		},
		Equal: func(a, b interface{}) bool { return eq(a.(*int64), b.(*int64)) },
	}
}

var logLine = regexp.MustCompile(`jepsen\.util - (\d+)\t:(\w+)\t:(\w+)\t(.*)$`)

func oracle(t *testing.T, log string, failedCASObserves bool) porcupine.CheckResult {
	t.Helper()
	parse := func(s string) *int64 {
		if s == "nil" {
			return nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		require.NoError(t, err, s)
		return &n
	}
	type open struct {
		in   casInput
		call int64
	}
	pending := map[int]open{}
	var ops []porcupine.Operation
	lines := strings.Split(strings.TrimSpace(log), "\n")
	end := int64(len(lines) + 1)
	for i, l := range lines {
		m := logLine.FindStringSubmatch(l)
		if m == nil {
			continue // the nemesis
		}
		p, _ := strconv.Atoi(m[1])
		typ, f, val := m[2], m[3], strings.TrimSpace(m[4])
		if typ == "invoke" {
			in := casInput{op: f}
			switch f {
			case "write":
				in.arg = parse(val)
			case "cas":
				parts := strings.Fields(strings.Trim(val, "[]"))
				in.arg, in.new = parse(parts[0]), parse(parts[1])
			}
			pending[p] = open{in, int64(i)}
			continue
		}
		o := pending[p]
		delete(pending, p)
		out := casOutput{}
		switch {
		case typ == "ok":
			out.known, out.ok = true, true
			if f == "read" {
				out.value = parse(val)
			}
		case typ == "fail" && f == "cas" && failedCASObserves:
			out.known = true
		case typ == "fail":
			continue
		default: // info: may have happened any time after the invoke
			ops = append(ops, porcupine.Operation{ClientId: p, Input: o.in, Call: o.call, Output: out, Return: end})
			continue
		}
		ops = append(ops, porcupine.Operation{ClientId: p, Input: o.in, Call: o.call, Output: out, Return: int64(i)})
	}
	for p, o := range pending {
		ops = append(ops, porcupine.Operation{ClientId: p, Input: o.in, Call: o.call, Return: end})
	}
	return porcupine.CheckOperationsTimeout(casModel(failedCASObserves), ops, 10*time.Second)
}

// ours judges a Jepsen log as `strongcheck check FILE` does.
func ours(t *testing.T, log string) checker.Verdict {
	t.Helper()
	h, err := jepsen.Read(strings.NewReader(log))
	require.NoError(t, err)
	require.Equal(t, jepsen.ModelRegister, h.Model)
	c := checker.CheckLinearizable(context.Background(), h.Ops, checker.Options{Timeout: 10 * time.Second})
	return c.Verdict
}

var verdictOf = map[porcupine.CheckResult]checker.Verdict{porcupine.Ok: checker.Valid, porcupine.Illegal: checker.Invalid}

// Hand-written histories in the log format of porcupine's Jepsen test
// data, judged as porcupine judges them.
func TestPorcupineLogFixtures(t *testing.T) {
	want := map[string]checker.Verdict{
		"valid-repeats.log":           checker.Valid,
		"invalid-nil-after-write.log": checker.Invalid,
		"invalid-old-repeat.log":      checker.Invalid,
		"valid-info-repeat.log":       checker.Valid,
		"failed-cas-witness.log":      checker.Valid,
	}
	for name, w := range want {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(t, err)
		log := string(b)
		assert.Equal(t, w, verdictOf[oracle(t, log, false)], "%s: the oracle", name)
		assert.Equal(t, w, ours(t, log), name)
	}
	// Where they differ: porcupine's etcd test model takes a failed cas
	// as a read that the value was not the old one; Knossos, Jepsen and
	// strongcheck take :fail as "did not happen".
	b, err := os.ReadFile(filepath.Join("testdata", "failed-cas-witness.log"))
	require.NoError(t, err)
	assert.Equal(t, porcupine.Illegal, oracle(t, string(b), true))
}

// randomLog writes a register history in the log format: small values
// that repeat, reads of nil, cas that fail when the value differs, info
// timeouts with a new process after them, failed reads; with corrupt some
// reads return a value the register did not hold.
func randomLog(seed uint64, n int, corrupt bool) string {
	rng := rand.New(rand.NewPCG(seed, 9))
	var state *int64
	procs := []int{0, 1, 2, 3}
	next := 4
	type pend struct {
		p        int
		f, inv   string
		applied  bool
		out, typ string
	}
	var lines []string
	var open []*pend
	line := func(p int, typ, f, v string) {
		lines = append(lines, fmt.Sprintf("INFO  jepsen.util - %d\t:%s\t:%s\t%s", p, typ, f, v))
	}
	str := func(v *int64) string {
		if v == nil {
			return "nil"
		}
		return strconv.FormatInt(*v, 10)
	}
	for step := 0; step < n || len(open) > 0; step++ {
		switch a := rng.IntN(3); {
		case a == 0 && step < n && len(open) < len(procs):
			busy := map[int]bool{}
			for _, o := range open {
				busy[o.p] = true
			}
			var p int
			for _, q := range procs {
				if !busy[q] {
					p = q
					break
				}
			}
			o := &pend{p: p}
			v := rng.Int64N(4)
			switch rng.IntN(3) {
			case 0:
				o.f, o.inv = "read", "nil"
			case 1:
				o.f, o.inv = "write", strconv.FormatInt(v, 10)
			default:
				o.f, o.inv = "cas", fmt.Sprintf("[%d %d]", rng.Int64N(4), v)
			}
			line(p, "invoke", o.f, o.inv)
			open = append(open, o)
		case a == 1 && len(open) > 0: // one takes effect
			o := open[rng.IntN(len(open))]
			if o.applied {
				continue
			}
			o.applied, o.typ = true, "ok"
			switch o.f {
			case "read":
				o.out = str(state)
				if corrupt && rng.IntN(15) == 0 {
					o.out = "9"
				}
			case "write":
				v, _ := strconv.ParseInt(o.inv, 10, 64)
				state, o.out = &v, o.inv
			default:
				var from, to int64
				fmt.Sscanf(o.inv, "[%d %d]", &from, &to)
				o.out = o.inv
				if state != nil && *state == from {
					state = &to
				} else {
					o.typ = "fail"
				}
			}
		case len(open) > 0: // one completes
			i := rng.IntN(len(open))
			o := open[i]
			switch {
			case !o.applied && o.f == "read" && rng.IntN(4) == 0:
				line(o.p, "fail", "read", ":timed-out")
			case !o.applied && o.f != "read" && rng.IntN(4) == 0, o.applied && o.f != "read" && rng.IntN(8) == 0:
				line(o.p, "info", o.f, ":timed-out")
				for j, q := range procs {
					if q == o.p {
						procs[j] = next
						next++
					}
				}
			case !o.applied:
				continue
			default:
				line(o.p, o.typ, o.f, o.out)
			}
			open = append(open[:i], open[i+1:]...)
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// Random logs with repeated values: strongcheck's verdict is porcupine's.
func TestRandomLogsAgreeWithPorcupine(t *testing.T) {
	seen := map[porcupine.CheckResult]int{}
	for seed := range uint64(150) {
		log := randomLog(seed, 40, seed%2 == 1)
		o := oracle(t, log, false)
		require.NotEqual(t, porcupine.Unknown, o)
		require.Equal(t, verdictOf[o], ours(t, log), "seed %d:\n%s", seed, log)
		seen[o]++
	}
	t.Logf("verdicts: %v", seen)
	require.Positive(t, seen[porcupine.Ok])
	require.Positive(t, seen[porcupine.Illegal])
}

// A strongcheck history written as Jepsen EDN and read back is judged the
// same: list-append with Elle's method, registers with porcupine.
func TestRoundTrip(t *testing.T) {
	planted := histgen.Layout([]histgen.Txn{
		{Process: 0, Node: "n1", Inv: 0, Comp: 10, Type: results.OK, Mops: []results.Mop{results.Append(1, 1)}},
		{Process: 1, Node: "n1", Inv: 0, Comp: 10, Type: results.OK, Mops: []results.Mop{results.Append(2, 1)}},
		{Process: 2, Node: "n1", Inv: 0, Comp: 10, Type: results.OK, Mops: []results.Mop{results.ReadOf(1, []int64{1}), results.ReadOf(2, []int64{})}},
		{Process: 3, Node: "n2", Inv: 0, Comp: 10, Type: results.OK, Mops: []results.Mop{results.ReadOf(1, []int64{}), results.ReadOf(2, []int64{1})}},
	})
	for name, ops := range map[string][]results.Op{
		"append, generated": histgen.ListAppend(4, 3000, histgen.TxnOptions{Final: true, Stale: 0.05}),
		"append, long fork": planted,
	} {
		var buf bytes.Buffer
		st, err := jepsen.WriteHistory(&buf, ops)
		require.NoError(t, err)
		assert.Positive(t, st.Ops)
		h, err := jepsen.Read(&buf)
		require.NoError(t, err, name)
		require.Equal(t, jepsen.ModelListAppend, h.Model)
		before := elle.Check(context.Background(), ops, elle.Options{})
		after := elle.Check(context.Background(), h.Ops, elle.Options{})
		assert.Equal(t, before.Verdict, after.Verdict, name)
		assert.Equal(t, kinds(before), kinds(after), "%s: %s / %s", name, before.Summary, after.Summary)
		assert.Equal(t, before.Txns, after.Txns, name)
		assert.Equal(t, before.FinalNode, after.FinalNode, "%s: final reads survive the trip", name)
	}
	reg := histgen.Register(3, 2000, histgen.RegisterOptions{Final: true})
	var buf bytes.Buffer
	_, err := jepsen.WriteHistory(&buf, reg)
	require.NoError(t, err)
	assert.Contains(t, buf.String(), ":f :cas, :value [")
	h, err := jepsen.Read(&buf)
	require.NoError(t, err)
	require.Equal(t, jepsen.ModelRegister, h.Model)
	c := checker.CheckLinearizable(context.Background(), h.Ops, checker.Options{Timeout: time.Minute})
	assert.Equal(t, checker.Valid, c.Verdict, c.Summary)
}

func kinds(r *elle.Result) map[elle.Kind]int {
	out := map[elle.Kind]int{}
	for _, a := range r.Anomalies {
		out[a.Kind] = a.Count
	}
	return out
}

func TestListAppendEDNFixture(t *testing.T) {
	h, err := jepsen.ReadFile(filepath.Join("testdata", "list-append.edn"), "")
	require.NoError(t, err)
	require.Equal(t, jepsen.ModelListAppend, h.Model)
	r := elle.Check(context.Background(), h.Ops, elle.Options{Model: "snapshot-isolation"})
	assert.Equal(t, map[elle.Kind]int{elle.GNonadjacent: 1}, kinds(r), r.Summary)
	assert.Equal(t, 1, r.Info, "the timed-out transaction is info")
}

// A history of both models is read as one of them when asked.
func TestReadOneModelOfTwo(t *testing.T) {
	mixed := "{:type :invoke, :f :txn, :process 0, :value [[:append 1 1]]}\n{:type :ok, :f :txn, :process 0, :value [[:append 1 1]]}\n" +
		"{:type :invoke, :f :write, :process 1, :value [1 5]}\n{:type :ok, :f :write, :process 1, :value [1 5]}\n"
	for model, f := range map[string]string{jepsen.ModelRegister: results.FWrite, jepsen.ModelListAppend: results.FTxn} {
		h, err := jepsen.ReadModel(strings.NewReader(mixed), model)
		require.NoError(t, err, model)
		assert.Equal(t, model, h.Model)
		for _, op := range h.Ops {
			if op.Process.IsClient() && op.Process != 2 { // 2 writes the register's initial nil
				assert.Equal(t, f, op.F, model)
			}
		}
	}
	_, err := jepsen.ReadModel(strings.NewReader(mixed), "bank")
	assert.ErrorIs(t, err, jepsen.ErrHistory)
}

func TestReadErrors(t *testing.T) {
	for name, in := range map[string]string{
		"no ops":        `{:type :ok, :f :start, :process :nemesis}`,
		"bad type":      `{:type :maybe, :f :txn, :process 0, :value []}`,
		"bad process":   `{:type :ok, :f :txn, :process "x", :value []}`,
		"mixed":         "{:type :invoke, :f :txn, :process 0, :value []}\n{:type :invoke, :f :write, :process 1, :value 1}",
		"bad mop":       `{:type :ok, :f :txn, :process 0, :value [[:w 1 2]]}`,
		"not edn":       `{:type`,
		"bad reg value": `{:type :invoke, :f :write, :process 0, :value "x"}`,
	} {
		_, err := jepsen.Read(strings.NewReader(in))
		assert.ErrorIs(t, err, jepsen.ErrHistory, name)
	}
}

// Jepsen's jepsen.util log lines come with tabs or with spaces between
// their fields: both read as the same history, and both judge as the
// fixture does.
func TestLogFieldsSeparatedBySpaces(t *testing.T) {
	for _, name := range []string{"valid-repeats.log", "invalid-nil-after-write.log", "failed-cas-witness.log"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(t, err)
		tabs := string(b)
		spaces := strings.NewReplacer("\t", " ").Replace(tabs)
		require.NotEqual(t, tabs, spaces, "%s has tabs to replace", name)
		want, err := jepsen.Read(strings.NewReader(tabs))
		require.NoError(t, err, name)
		got, err := jepsen.Read(strings.NewReader(spaces))
		require.NoError(t, err, "%s with spaces", name)
		assert.Equal(t, want.Ops, got.Ops, name)
		assert.Equal(t, ours(t, tabs), ours(t, spaces), name)
	}
	// Several spaces, and a value with spaces of its own.
	h, err := jepsen.Read(strings.NewReader("INFO  jepsen.util - 2   :invoke  :cas   [2 4]\nINFO  jepsen.util - 2 :fail :cas [2 4]\n"))
	require.NoError(t, err)
	var cas []results.Type
	for _, op := range h.Ops {
		if op.F == results.FCAS {
			cas = append(cas, op.Type)
		}
	}
	assert.Equal(t, []results.Type{results.Invoke, results.Fail}, cas)
}
