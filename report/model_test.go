package report

import (
	"reflect"
	"testing"

	"github.com/strongcheck/strongcheck/results"
)

func TestTimelineWindowsAndSteps(t *testing.T) {
	nem := func(typ results.Type, at int64, f string, id int, phase string) results.Op {
		return results.Op{Time: at, Process: results.NemesisProcess, Type: typ, F: f,
			Fault: &results.Fault{ID: id, Kind: "partition", Phase: phase, Targets: []string{"n3"}}}
	}
	client := func(typ results.Type, at int64, p results.Process) results.Op {
		return results.Op{Time: at, Process: p, Type: typ, F: results.FRead}
	}
	h := &results.History{Ops: []results.Op{
		client(results.Invoke, 10, 0),
		nem(results.Invoke, 100, "partition", 1, results.PhaseStart),
		nem(results.OK, 150, "partition", 1, results.PhaseStart),
		client(results.OK, 160, 0),
		client(results.Invoke, 170, 1),
		nem(results.Invoke, 400, "heal", 1, results.PhaseStop),
		client(results.Info, 420, 1),
		nem(results.OK, 500, "heal", 1, results.PhaseStop),
		nem(results.Invoke, 600, "partition", 2, results.PhaseStart), // killed here
		{Time: 650, Process: results.HarnessProcess, Type: results.OK, F: results.FFinal, Node: "n2"},
	}}
	tl := buildTimeline(h)
	want := []window{
		{ID: 1, Kind: "partition", Targets: []string{"n3"}, StartNS: 100, StopNS: 500},
		{ID: 2, Kind: "partition", Targets: []string{"n3"}, StartNS: 600, StopNS: -1},
	}
	if !reflect.DeepEqual(tl.windows, want) {
		t.Errorf("windows %+v, want %+v (open at the first start invoke, closed at the stop's completion)", tl.windows, want)
	}
	wantC := []completion{{invokeNS: 10, completeNS: 160, latencyNS: 150, out: outOK}, {invokeNS: 170, completeNS: 420, latencyNS: 250, out: outInfo}}
	if !reflect.DeepEqual(tl.completions, wantC) {
		t.Errorf("completions %+v, want %+v (harness and nemesis ops are not client operations)", tl.completions, wantC)
	}
	var steps []string
	for _, s := range tl.nemesis {
		state := "done"
		if s.Open {
			state = "open"
		}
		steps = append(steps, s.Op.F+"@"+itoa(s.StartNS)+":"+state)
	}
	if want := []string{"partition@100:done", "heal@400:done", "partition@600:open"}; !reflect.DeepEqual(steps, want) {
		t.Errorf("steps %v, want %v (one row per step, from its invoke)", steps, want)
	}
	if tl.durationNS != 650 || !reflect.DeepEqual(tl.nodes, []string{"n2"}) {
		t.Errorf("duration %d, nodes %v", tl.durationNS, tl.nodes)
	}
}

func itoa(n int64) string { return fmtNum(n) }
