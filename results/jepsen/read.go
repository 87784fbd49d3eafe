package jepsen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/strongcheck/strongcheck/results"
)

// Models a Jepsen history is read as.
const (
	ModelRegister   = "register"
	ModelListAppend = "list-append"
)

// History is a Jepsen history read as a strongcheck one.
type History struct {
	results.History
	// Model is what its client operations are: ModelRegister (read,
	// write, cas) or ModelListAppend (txn).
	Model string
	// Notes say what the reader made of the input: operations it skipped,
	// the initial nil it wrote.
	Notes []string
}

// ErrHistory is wrapped by every error about a file that is not a Jepsen
// history this reader knows (the CLI exits 254 for it).
var ErrHistory = errors.New("not a Jepsen history")

// ReadFile reads the Jepsen history at path; see ReadModel.
func ReadFile(path, model string) (*History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("jepsen: %w", err)
	}
	defer f.Close()
	return ReadModel(f, model)
}

// Read reads a history of one model; see ReadModel.
func Read(r io.Reader) (*History, error) { return ReadModel(r, "") }

// ReadModel reads a Jepsen history: EDN op maps (one per line as history.edn
// holds them, or one vector of them), or the jepsen.util log lines of
// older Jepsen tests ("INFO  jepsen.util - 3	:invoke	:write	1"), whose
// line order is their time. Register operations (:read, :write, :cas, on
// independent keys [k v] or on one register) and list-append transactions
// (:txn) become client operations; :nemesis ops nemesis steps; ops marked
// :final? final reads. Jepsen's register starts as nil: the reader writes
// that initial state as an ok write, before everything, of a value no
// operation uses (a note says which), so that the checker's model, which
// starts at 0, judges the same history. A :fail op certainly did not
// happen, as in Knossos; an :info one may have. model (ModelRegister or
// ModelListAppend) keeps that model's client operations of a history that
// has both (strongcheck runs several workloads at once) and leaves the
// others out; "" takes the one the history has, and a history with both is
// then an error.
func ReadModel(r io.Reader, model string) (*History, error) {
	if model != "" && model != ModelRegister && model != ModelListAppend {
		return nil, fmt.Errorf("%w: model %q: want %s or %s", ErrHistory, model, ModelRegister, ModelListAppend)
	}
	br := bufio.NewReaderSize(r, 1<<16)
	head, _ := br.Peek(4096)
	var ops []jop
	var err error
	if bytes.Contains(head, []byte("jepsen.util")) {
		ops, err = readLog(br)
	} else {
		ops, err = readEDN(br)
	}
	if err != nil {
		return nil, err
	}
	return convert(ops, model)
}

// jop is one Jepsen op before conversion.
type jop struct {
	typ     results.Type
	proc    results.Process
	f       string
	value   Value
	time    int64
	hasTime bool
	node    string
	err     string
	final   bool
	phase   string
	fault   int64
	primary string
}

func readEDN(r io.Reader) ([]jop, error) {
	d := NewReader(r)
	var forms []Value
	for {
		v, err := d.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrHistory, err)
		}
		forms = append(forms, v)
	}
	if len(forms) == 1 && forms[0].Seq() {
		forms = forms[0].Items
	}
	ops := make([]jop, 0, len(forms))
	for i, m := range forms {
		op, err := fromMap(m)
		if err != nil {
			return nil, fmt.Errorf("%w: op %d: %w", ErrHistory, i, err)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// fromMap reads one op map.
func fromMap(m Value) (jop, error) {
	if m.Kind != Map {
		return jop{}, fmt.Errorf("%s is no op map", short(m))
	}
	op := jop{value: m.Get("value"), final: m.Get("final?").Bool, phase: m.Get("phase").Str,
		fault: m.Get("fault-id").Int, primary: m.Get("primary").Str, node: m.Get("node").Str}
	t := m.Get("type")
	switch {
	case t.IsKW("invoke"), t.IsKW("ok"), t.IsKW("fail"), t.IsKW("info"):
		op.typ = results.Type(t.Str)
	default:
		return op, fmt.Errorf("%s: :type %s, want :invoke, :ok, :fail or :info", short(m), short(t))
	}
	switch p := m.Get("process"); {
	case p.Kind == Int && p.Int >= 0:
		op.proc = results.Process(p.Int)
	case p.IsKW("nemesis"):
		op.proc = results.NemesisProcess
	default:
		return op, fmt.Errorf("%s: :process %s, want a number or :nemesis", short(m), short(p))
	}
	if op.proc == results.NemesisProcess && m.Get("invoke?").Bool {
		op.typ = results.Invoke
	}
	f := m.Get("f")
	if f.Kind != Keyword && f.Kind != String {
		return op, fmt.Errorf("%s: :f %s", short(m), short(f))
	}
	op.f = f.Str
	if tm := m.Get("time"); tm.Kind == Int {
		op.time, op.hasTime = tm.Int, true
	}
	if e := m.Get("error"); !e.IsNil() {
		op.err = e.Str
		if e.Kind != String {
			op.err = e.String()
		}
	}
	return op, nil
}

// readLog reads jepsen.util log lines: process, type, f and value,
// separated by tabs or, as some Jepsen versions write them, by spaces
// (logFields). Other lines are not ops and are passed over.
func readLog(r io.Reader) ([]jop, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<26)
	var ops []jop
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		i := strings.Index(text, "jepsen.util - ")
		if i < 0 {
			continue
		}
		parts := logFields(text[i+len("jepsen.util - "):])
		if len(parts) < 3 {
			continue
		}
		m := Value{Kind: Map}
		proc := strings.TrimSpace(parts[0])
		if n, err := strconv.ParseInt(proc, 10, 64); err == nil {
			m.Items = append(m.Items, KW("process"), I(n))
		} else {
			m.Items = append(m.Items, KW("process"), KW(strings.TrimPrefix(proc, ":")))
		}
		m.Items = append(m.Items, KW("type"), KW(strings.TrimPrefix(strings.TrimSpace(parts[1]), ":")),
			KW("f"), KW(strings.TrimPrefix(strings.TrimSpace(parts[2]), ":")))
		if len(parts) == 4 && strings.TrimSpace(parts[3]) != "" {
			v, err := ParseString(parts[3])
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: value %q: %w", ErrHistory, line, parts[3], err)
			}
			m.Items = append(m.Items, KW("value"), v)
		}
		op, err := fromMap(m)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrHistory, line, err)
		}
		ops = append(ops, op)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("jepsen: read log: %w", err)
	}
	return ops, nil
}

// logFields splits the fields of a jepsen.util log line: process, type, f
// and the value (the rest of the line, which may hold spaces of its own:
// [2 4]). Tabs separate them where the line has one; else runs of spaces.
func logFields(s string) []string {
	if strings.Contains(s, "\t") {
		return strings.SplitN(s, "\t", 4)
	}
	var parts []string
	for len(parts) < 3 {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return parts
		}
		end := strings.IndexByte(s, ' ')
		if end < 0 {
			return append(parts, s)
		}
		parts, s = append(parts, s[:end]), s[end:]
	}
	if s = strings.TrimSpace(s); s != "" {
		parts = append(parts, s)
	}
	return parts
}

// short renders a value for an error message.
func short(v Value) string {
	s := v.String()
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
