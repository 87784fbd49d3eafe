package report

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/cli/exitcode"
	"github.com/strongcheck/strongcheck/results"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var funcs = template.FuncMap{
	"secs":    func(ns int64) string { return fmtSecs(ns) },
	"dur":     func(ns int64) string { return fmtDur(ns) },
	"num":     func(n int) string { return fmtNum(int64(n)) },
	"num64":   func(n int64) string { return fmtNum(n) },
	"mib":     func(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) },
	"join":    strings.Join,
	"verdict": verdictWord,
	"vclass":  verdictClass,
	"deref":   func(p *int64) string { return derefStr(p) },
	"ints":    func(v []int64) string { return fmtInts(v) },
	"sub":     func(a, b int) int { return a - b },
	"add":     func(a, b int) int { return a + b },
	"proc":    func(p int) string { return results.Process(p).String() },
	"since":   fmtSince,
	"utc":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 UTC") },
	"lsns":    fmtNodeLSNs,
	"count":   fullCount,
	// listAppend renders the list-append check (cycles.go).
	"listAppend": listAppendHTML,
}

var pageTmpl = template.Must(template.New("report.html.tmpl").Funcs(funcs).ParseFS(templateFS, "templates/report.html.tmpl"))

// maxRows caps every evidence table; results.json has the rest.
const maxRows = 100

type kv struct{ K, V string }

type fileLink struct {
	Href, Name, Size string
}

type faultRow struct {
	ID                                       int
	Kind, Targets, Start, Stop, Outage       string
	HasOps                                   bool
	OK, Fail, Info                           int
	P50, P99, Max, WriteGap                  string
	Failover, ToPromotion, ToFirstWrite, RTO string
}

type view struct {
	In           *Input
	Title        string
	Verdict      string
	VerdictClass string
	VerdictLine  string
	Exit         int
	Info         *results.TestInfo
	Settings     []kv
	Extra        []kv
	Command      string
	Duration     string
	Nodes        string
	HistoryNote  string
	Figures      []figure
	FigureErrs   []string
	LagFigures   []figure
	LagNote      string
	Faults       []faultRow
	Nemesis      []nemesisStep
	NemesisMore  int
	// Manager is an HA manager's account beside the faults (manager.go).
	Manager   []nemesisStep
	Porcupine map[string]string // key -> file name, for keys with a visualization on disk
	Files     []fileLink
	Logs      []fileLink
	Avail     *checker.AvailabilityResult
}

// HTML renders the self-contained report.html: inline CSS and plots, no
// script and no network access.
func HTML(in *Input) ([]byte, error) {
	v := &view{In: in, Info: in.Info, Porcupine: map[string]string{}}
	v.Title = "strongcheck " + in.testName()
	v.Verdict = verdictWord(in.Verdict())
	v.VerdictClass = verdictClass(in.Verdict())
	v.VerdictLine = verdictLine(in)
	v.Exit = exitCode(in)
	if in.Info != nil {
		v.Settings = sortedKV(in.Info.Settings)
		v.Extra = extraKV(in.Info)
		v.Command = shellJoin(in.Info.Command)
		v.Nodes = strings.Join(in.Info.Nodes, ", ")
		if !in.Info.EndTime.IsZero() {
			v.Duration = fmtDur(int64(in.Info.EndTime.Sub(in.Info.StartTime)))
		}
	}
	var tl *timeline
	if t := in.timeline(); t != nil {
		tl = t.tl
		if v.Duration == "" {
			v.Duration = fmtDur(tl.durationNS) + " (history)"
		}
		if v.Nodes == "" {
			v.Nodes = strings.Join(tl.nodes, ", ")
		}
		if torn, line := in.torn(); torn {
			v.HistoryNote = fmt.Sprintf("The history ends in a torn line (line %d): the run was killed while writing it. Everything before it is shown.", line)
		}
		v.Nemesis = tl.nemesis
		v.Manager = managerSteps(tl.nemesis)
		if len(v.Nemesis) > 4*maxRows {
			v.NemesisMore = len(v.Nemesis) - 4*maxRows
			v.Nemesis = v.Nemesis[:4*maxRows]
		}
		for _, mk := range []func(*timeline) (figure, error){latencyFigure, throughputFigure} {
			f, err := mk(tl)
			if err != nil {
				v.FigureErrs = append(v.FigureErrs, err.Error())
				continue
			}
			v.Figures = append(v.Figures, f)
		}
	}
	windows := windowsFromResult(in.Result)
	durationNS := int64(0)
	if tl != nil {
		windows, durationNS = tl.windows, tl.durationNS
	}
	lag, err := lagFigures(in.Lag, windows, durationNS)
	switch {
	case err != nil:
		v.LagNote = "The lag plot could not be drawn: " + err.Error()
	case len(in.Lag) == 0:
		v.LagNote = "No replication lag samples (lag.jsonl) in this run."
	case in.LagTorn:
		v.LagNote = "lag.jsonl ends in a torn line; the samples before it are shown."
	}
	v.LagFigures = lag
	v.Avail = availability(in.Result)
	v.Faults = faultRows(windows, v.Avail)
	if c := findCheck(in.Result, checker.NameLinearizable); c != nil && c.Linearizable != nil {
		keys := append([]string{"all"}, c.Linearizable.BadKeys...)
		for _, k := range keys {
			name := results.PorcupineHTMLName(k)
			if _, err := os.Stat(filepath.Join(in.Run.Dir, name)); err == nil {
				v.Porcupine[k] = name
			}
		}
	}
	v.Files, v.Logs = listFiles(in.Run)

	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("render report.html: %w", err)
	}
	return buf.Bytes(), nil
}

func faultRows(ws []window, a *checker.AvailabilityResult) []faultRow {
	byID := map[int]*checker.Window{}
	rto := map[int]*checker.RTO{}
	if a != nil {
		for i := range a.Windows {
			byID[a.Windows[i].ID] = &a.Windows[i]
		}
		for i := range a.Failovers {
			rto[a.Failovers[i].FaultID] = &a.Failovers[i]
		}
	}
	var out []faultRow
	for _, w := range ws {
		r := faultRow{ID: w.ID, Kind: w.Kind, Targets: strings.Join(w.Targets, ", "), Start: fmtSecs(w.StartNS), Stop: "never healed", Outage: "—"}
		if w.StopNS >= 0 {
			r.Stop = fmtSecs(w.StopNS)
			r.Outage = fmtDur(w.StopNS - w.StartNS)
		}
		if aw := byID[w.ID]; aw != nil {
			r.HasOps = true
			r.OK, r.Fail, r.Info = aw.Ops.OK, aw.Ops.Fail, aw.Ops.Info
			r.P50, r.P99, r.Max = fmtDur(aw.Ops.P50), fmtDur(aw.Ops.P99), fmtDur(aw.Ops.Max)
			r.WriteGap = fmtDur(aw.WriteGapNS)
		}
		if f := rto[w.ID]; f != nil {
			r.Failover = f.Old + " → " + f.New
			r.ToPromotion, r.ToFirstWrite = "never", "never"
			if f.PromotedNS >= 0 {
				r.ToPromotion = fmtDur(f.ToPromotionNS)
			}
			if f.FirstWriteNS >= 0 {
				r.ToFirstWrite = fmtDur(f.ToFirstWriteNS)
			}
		}
		out = append(out, r)
	}
	return out
}

// listFiles lists the files the run folder publishes and its logs, as
// relative links.
func listFiles(run results.Run) (files, logs []fileLink) {
	list := func(dir, prefix string) []fileLink {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil
		}
		var out []fileLink
		for _, e := range entries {
			if e.IsDir() || !results.Published(prefix+e.Name()) {
				continue // what serve would not answer
			}
			size := ""
			if fi, err := e.Info(); err == nil {
				size = fmtBytes(fi.Size())
			}
			out = append(out, fileLink{Href: prefix + e.Name(), Name: prefix + e.Name(), Size: size})
		}
		return out
	}
	if run.Dir == "" {
		return nil, nil
	}
	return list(run.Dir, ""), list(run.LogsDir(), results.LogsDirName+"/")
}

func verdictWord(v checker.Verdict) string {
	if v == "" {
		return "no result"
	}
	return string(v)
}

func verdictClass(v checker.Verdict) string {
	switch v {
	case checker.Valid, checker.Invalid, checker.Unknown:
		return string(v)
	}
	return "none"
}

// exitCode is the exit code the run's verdict maps to; a missing result is
// a harness error.
func exitCode(in *Input) int {
	if in.Result == nil {
		return exitcode.Harness
	}
	return exitcode.Of(in.Result.Verdict)
}

func verdictLine(in *Input) string {
	switch in.Verdict() {
	case checker.Valid:
		if m := in.Result.ModelResult(in.Result.Model); m != nil {
			return "The history " + m.Summary + "."
		}
		return "No anomaly was found."
	case checker.Invalid:
		if m := in.Result.ModelResult(in.Result.Model); m != nil {
			return "Under the " + string(m.Model) + " model: " + m.Summary + "."
		}
		var bad []string
		for _, c := range in.Result.Checks {
			if c.Verdict == checker.Invalid {
				bad = append(bad, c.Name)
			}
		}
		return "An anomaly was found by: " + strings.Join(bad, ", ") + "."
	case checker.Unknown:
		if m := in.Result.ModelResult(in.Result.Model); m != nil && m.Unknown != "" {
			return "Under the " + string(m.Model) + " model the run could not be decided (" + m.Unknown + "); unknown is never a pass."
		}
		return "A check could not decide; unknown is never a pass."
	case "":
		return "There is no readable result for this run: nothing was judged."
	}
	return "Verdict " + string(in.Verdict()) + " is not one this strongcheck knows."
}

// extraKV is the run's other settings as the report lists them: Extra,
// and the isolation level where runs stored before it had a field of its
// own showed it.
func extraKV(info *results.TestInfo) []kv {
	m := maps.Clone(info.Extra)
	if m == nil {
		m = map[string]string{}
	}
	if info.Isolation != "" {
		m["isolation"] = string(info.Isolation)
	}
	if info.OverrunNS > 0 {
		m["overrun"] = fmtDur(info.OverrunNS) + " allowed past the time limit for the planned faults"
	}
	if info.ExtendedNS > 0 {
		m["ran past its time limit"] = fmtDur(info.ExtendedNS) + ", to finish the faults planned inside it"
	}
	return sortedKV(m)
}

func sortedKV(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].K < out[j].K })
	return out
}

// shellJoin quotes argv for a POSIX shell so it can be pasted back.
func shellJoin(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) < 0 {
			parts[i] = a
			continue
		}
		parts[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(parts, " ")
}

func fmtSecs(ns int64) string {
	if ns < 0 {
		return "—"
	}
	return strconv.FormatFloat(float64(ns)/1e9, 'f', 3, 64) + " s"
}

// fmtDur prints a duration with three significant digits at most.
func fmtDur(ns int64) string {
	d := time.Duration(ns)
	switch {
	case ns < 0:
		return "—"
	case d < time.Microsecond:
		return fmt.Sprintf("%d ns", ns)
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(ns)/1e3, 'f', 1, 64) + " µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(ns)/1e6, 'f', 1, 64) + " ms"
	case d < time.Minute:
		return strconv.FormatFloat(float64(ns)/1e9, 'f', 2, 64) + " s"
	}
	return d.Round(time.Second).String()
}

func fmtNum(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fmtBytes(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func derefStr(p *int64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(*p, 10)
}

func fmtInts(v []int64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatInt(x, 10)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// fmtSince says how long after the start of the latest fault an operation
// was invoked.
func fmtSince(r checker.OpRef) string {
	if r.SinceFaultNS < 0 {
		return "no fault before"
	}
	s := fmtDur(r.SinceFaultNS) + " after"
	if r.FaultKind != "" {
		s += fmt.Sprintf(" #%d %s", r.FaultID, r.FaultKind)
	}
	return s
}

func fmtNodeLSNs(ns []checker.NodeLSN) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = n.Node + " " + n.Role
		if n.Timeline > 0 {
			parts[i] += fmt.Sprintf(" tl%d", n.Timeline)
		}
		if n.LSN != "" {
			parts[i] += " @" + n.LSN
		}
		if n.ReplayLSN != "" {
			parts[i] += " replay " + n.ReplayLSN
		}
		if n.Error != "" {
			parts[i] += " (" + n.Error + ")"
		}
	}
	return strings.Join(parts, "; ")
}

// fullCount is a list's full count: the result's count field when set (the
// lists hold only the first 100), else the list's length.
func fullCount(count, listed int) int { return max(count, listed) }
