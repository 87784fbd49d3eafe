package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file is the one place that knows the store layout:
//
//	<root>/                        (default "store")
//	  latest -> <test>/<time>      the newest run of any test
//	  <test>/
//	    latest -> <time>           the newest run of this test
//	    <time>/                    one run, e.g. 20261128T201500.000Z
//	      test.json                what was run (TestInfo)
//	      history.jsonl            the history (Writer, Read)
//	      results.json             the checker's judgement
//	      lag.jsonl                replication lag samples (LagWriter)
//	      report.html              the self-contained report
//	      summary.md               the short markdown summary
//	      junit.xml                one test case per checker
//	      linearizable-<key>.html  porcupine's visualization of a bad key
//	      logs/<node>.log          every node's PostgreSQL log
//	      cluster/                 the backend's own folder (local: the
//	                               servers' logs while they run, state);
//	                               not published
//
// The files listed, and only those, are what a run publishes (Published):
// `strongcheck serve` answers nothing else. No file of a run holds a
// password.

// DefaultStoreRoot is the store's root when none is given, relative to the
// working directory.
const DefaultStoreRoot = "store"

// RunTimeFormat is how a run's start time names its folder (always UTC).
const RunTimeFormat = "20060102T150405.000Z"

// LatestName is the name of the links to the newest run.
const LatestName = "latest"

// File names inside a run folder.
const (
	TestJSONName    = "test.json"
	HistoryName     = "history.jsonl"
	ResultsJSONName = "results.json"
	LagName         = "lag.jsonl"
	ReportHTMLName  = "report.html"
	SummaryMDName   = "summary.md"
	JUnitXMLName    = "junit.xml"
	LogsDirName     = "logs"
)

// Store is a folder of runs. The zero value is the store at DefaultStoreRoot.
type Store struct {
	// Root is the store's folder; "" means DefaultStoreRoot.
	Root string
}

// Dir is the store's root folder.
func (s Store) Dir() string {
	if s.Root == "" {
		return DefaultStoreRoot
	}
	return s.Root
}

var testNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$`)

// ValidTestName reports why name cannot name a test folder, or nil. A name
// is 1 to 100 characters of letters, digits, '.', '_', '+' and '-', starting
// with a letter or digit, and is not "latest".
func ValidTestName(name string) error {
	if !testNameRE.MatchString(name) || name == LatestName {
		return fmt.Errorf("test name %q: want 1-100 of [A-Za-z0-9._+-], starting with a letter or digit, not %q", name, LatestName)
	}
	return nil
}

// NewRun creates the folder of a new run of testName started at start,
// <root>/<testName>/<start in RunTimeFormat>/ with its logs folder, and points
// both latest links at it. Two runs started in the same millisecond get
// folders suffixed "-2", "-3", ... The links are replaced atomically (a new
// link renamed over the old), so a reader never sees a missing latest.
func (s Store) NewRun(testName string, start time.Time) (Run, error) {
	if err := ValidTestName(testName); err != nil {
		return Run{}, fmt.Errorf("new run: %w", err)
	}
	testDir := filepath.Join(s.Dir(), testName)
	if err := os.MkdirAll(testDir, 0o755); err != nil {
		return Run{}, fmt.Errorf("new run: %w", err)
	}
	base := start.UTC().Format(RunTimeFormat)
	name := base
	for i := 2; ; i++ {
		err := os.Mkdir(filepath.Join(testDir, name), 0o755)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 1000 {
			return Run{}, fmt.Errorf("new run: %w", err)
		}
		name = base + "-" + strconv.Itoa(i)
	}
	run := Run{Dir: filepath.Join(testDir, name)}
	if err := os.Mkdir(run.LogsDir(), 0o755); err != nil {
		return Run{}, fmt.Errorf("new run: %w", err)
	}
	if err := replaceSymlink(name, filepath.Join(testDir, LatestName)); err != nil {
		return Run{}, fmt.Errorf("new run: %w", err)
	}
	if err := replaceSymlink(filepath.Join(testName, name), filepath.Join(s.Dir(), LatestName)); err != nil {
		return Run{}, fmt.Errorf("new run: %w", err)
	}
	return run, nil
}

// replaceSymlink makes link point at target (relative to link's folder),
// atomically replacing whatever link was.
func replaceSymlink(target, link string) error {
	tmp := fmt.Sprintf("%s.tmp-%d-%d", link, os.Getpid(), time.Now().UnixNano())
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("link %s: %w", link, err)
	}
	return nil
}

// Latest returns the newest run of testName, or of any test when testName is
// "", as the latest links say.
func (s Store) Latest(testName string) (Run, error) {
	link := filepath.Join(s.Dir(), LatestName)
	if testName != "" {
		link = filepath.Join(s.Dir(), testName, LatestName)
	}
	return OpenRun(link)
}

// Run is one run's folder. Its methods give the path of every file in it.
type Run struct {
	Dir string
}

// OpenRun returns the run in dir, resolving links (store/latest). It fails
// when dir is not a folder holding at least one of test.json, history.jsonl
// and results.json, so that a mistyped path never gets report files written
// into it.
func OpenRun(dir string) (Run, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return Run{}, fmt.Errorf("open run: %w", err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return Run{}, fmt.Errorf("open run: %w", err)
	}
	if !st.IsDir() {
		return Run{}, fmt.Errorf("open run: %s is not a folder", dir)
	}
	r := Run{Dir: real}
	for _, p := range []string{r.TestJSON(), r.History(), r.ResultsJSON()} {
		if _, err := os.Stat(p); err == nil {
			return r, nil
		}
	}
	return Run{}, fmt.Errorf("open run: %s holds none of %s, %s, %s: not a run folder", dir, TestJSONName, HistoryName, ResultsJSONName)
}

// TestJSON is the path of test.json (TestInfo).
func (r Run) TestJSON() string { return filepath.Join(r.Dir, TestJSONName) }

// History is the path of history.jsonl.
func (r Run) History() string { return filepath.Join(r.Dir, HistoryName) }

// ResultsJSON is the path of results.json (checker.Result).
func (r Run) ResultsJSON() string { return filepath.Join(r.Dir, ResultsJSONName) }

// Lag is the path of lag.jsonl (LagSample lines).
func (r Run) Lag() string { return filepath.Join(r.Dir, LagName) }

// ReportHTML is the path of report.html.
func (r Run) ReportHTML() string { return filepath.Join(r.Dir, ReportHTMLName) }

// SummaryMD is the path of summary.md.
func (r Run) SummaryMD() string { return filepath.Join(r.Dir, SummaryMDName) }

// JUnitXML is the path of junit.xml.
func (r Run) JUnitXML() string { return filepath.Join(r.Dir, JUnitXMLName) }

// LogsDir is the folder of the nodes' server logs (Cluster.CollectLogs).
func (r Run) LogsDir() string { return filepath.Join(r.Dir, LogsDirName) }

// NodeLog is the path of node's server log inside LogsDir.
func (r Run) NodeLog(node string) string {
	return filepath.Join(r.LogsDir(), safeFileName(node)+".log")
}

// PorcupineHTMLName is the file name of porcupine's visualization of key,
// relative to the run folder.
func PorcupineHTMLName(key string) string {
	return "linearizable-" + safeFileName(key) + ".html"
}

// PorcupineHTML is the path of porcupine's visualization of key.
func (r Run) PorcupineHTML(key string) string {
	return filepath.Join(r.Dir, PorcupineHTMLName(key))
}

// Name is the run folder's name relative to the store: <test>/<time>.
func (r Run) Name() string {
	return filepath.Base(filepath.Dir(r.Dir)) + "/" + filepath.Base(r.Dir)
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// safeFileName maps s to one harmless path element.
func safeFileName(s string) string {
	s = unsafeChars.ReplaceAllString(s, "_")
	if s == "" || s == "." || s == ".." {
		s = "_" + s
	}
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// TestInfoSchema is the version of TestInfo's JSON form.
const TestInfoSchema = 1

// TestInfo is test.json: what was run, so that a reader can rerun it. It
// never holds a password: WriteTestInfo redacts the ones it recognizes, but
// the harness must not put secrets in it in the first place.
type TestInfo struct {
	Schema int    `json:"schema"`
	Name   string `json:"name"`
	// Command is the exact argv, program name first.
	Command            []string  `json:"command"`
	Seed               int64     `json:"seed"`
	StartTime          time.Time `json:"start_time"`
	EndTime            time.Time `json:"end_time,omitzero"`
	StrongcheckVersion string    `json:"strongcheck_version"`
	PostgresVersion    string    `json:"postgres_version,omitempty"`
	Backend            string    `json:"backend"`
	Nodes              []string  `json:"nodes"`
	// Settings is the effective postgresql.conf every node started with.
	Settings  map[string]string `json:"settings,omitempty"`
	Workloads []string          `json:"workloads,omitempty"`
	Nemeses   []string          `json:"nemeses,omitempty"`
	// Failover is the failover mode (auto, manual, none).
	Failover string `json:"failover,omitempty"`
	// Sequence is the user's fault sequence, when one replaced the
	// nemeses' seeded plan.
	Sequence string `json:"sequence,omitempty"`
	// Model is the consistency model the verdict (and exit code) follows:
	// guide, postgres or linearizable.
	Model string `json:"model,omitempty"`
	// Isolation is the list-append workload's isolation level; empty when
	// the run had no list-append workload. Runs stored before it had a
	// field of its own kept it as Extra["isolation"]: ReadTestInfo moves
	// it here.
	Isolation   Isolation `json:"isolation,omitempty"`
	TimeLimitNS int64     `json:"time_limit_ns,omitempty"`
	// OverrunNS is how far past the time limit the run was allowed to go
	// so that the faults planned inside it happen; ExtendedNS is how far
	// it went (0: it ended at its time limit).
	OverrunNS   int64 `json:"overrun_ns,omitempty"`
	ExtendedNS  int64 `json:"extended_ns,omitempty"`
	Concurrency int   `json:"concurrency,omitempty"`
	// Host describes the machine (hostname, kernel, CPUs) in one line.
	Host string `json:"host,omitempty"`
	// Extra holds other settings of the run by name (flags, rates).
	Extra map[string]string `json:"extra,omitempty"`
	// Harness is what the harness process itself consumed while the
	// clients ran; nil for runs that did not get that far.
	Harness *HarnessUse `json:"harness,omitempty"`
}

// HarnessUse is the CPU the harness process (clients, history, nemesis,
// samplers) used during the client phase of a run. On a machine the
// harness shares with the cluster it is the evidence that the clients were
// not the bottleneck: every core-second here was not available to
// PostgreSQL.
type HarnessUse struct {
	// DriveNS is the wall-clock length of the client phase.
	DriveNS int64 `json:"drive_ns"`
	// CPUNS is the process's user plus system CPU time in that phase.
	CPUNS int64 `json:"cpu_ns"`
	// Ops is the number of client operations completed in that phase.
	Ops int64 `json:"ops"`
	// GoMaxProcs is the Go scheduler's processor count in that phase.
	GoMaxProcs int `json:"gomaxprocs"`
	// PeakRSSBytes is the harness process's peak resident memory from its
	// start to the end of the client phase (getrusage's maxrss), so it
	// covers setup and the clients but not the checks after them. Zero
	// where it was not measured (runs before it was recorded).
	PeakRSSBytes int64 `json:"peak_rss_bytes,omitempty"`
}

// Cores is the average number of cores the harness kept busy.
func (h *HarnessUse) Cores() float64 {
	if h == nil || h.DriveNS <= 0 {
		return 0
	}
	return float64(h.CPUNS) / float64(h.DriveNS)
}

// CPUPerOp is the harness CPU time per completed client operation.
func (h *HarnessUse) CPUPerOp() time.Duration {
	if h == nil || h.Ops <= 0 {
		return 0
	}
	return time.Duration(h.CPUNS / h.Ops)
}

// TimeLimit is TimeLimitNS as a duration.
func (t *TestInfo) TimeLimit() time.Duration { return time.Duration(t.TimeLimitNS) }

var (
	conninfoPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']+)`)
	urlPassword      = regexp.MustCompile(`(://[^/:@\s]+:)[^@\s]+@`)
	flagPassword     = regexp.MustCompile(`(?i)^(--?[a-z0-9-]*(?:password|passwd|secret|token)[a-z0-9-]*=).+$`)
)

// Redacted is what replaces a password in test.json.
const Redacted = "REDACTED"

// Redact removes passwords from s: password=... in a conninfo, user:pass@
// in a URL, and --*password*=... flags.
func Redact(s string) string {
	s = conninfoPassword.ReplaceAllString(s, "${1}"+Redacted)
	s = urlPassword.ReplaceAllString(s, "${1}"+Redacted+"@")
	return flagPassword.ReplaceAllString(s, "${1}"+Redacted)
}

// redacted returns a copy of t with Redact applied to the command line,
// settings and extras. A flag that names a secret and takes its value as the
// next argument (--password x) gets that argument redacted too.
func (t *TestInfo) redacted() TestInfo {
	out := *t
	out.Command = make([]string, len(t.Command))
	for i, a := range t.Command {
		out.Command[i] = Redact(a)
		if i > 0 && isSecretFlag(t.Command[i-1]) {
			out.Command[i] = Redacted
		}
	}
	redactMap := func(m map[string]string) map[string]string {
		if m == nil {
			return nil
		}
		o := make(map[string]string, len(m))
		for k, v := range m {
			o[k] = Redact(v)
			if secretKey(k) {
				o[k] = Redacted
			}
		}
		return o
	}
	out.Settings = redactMap(t.Settings)
	out.Extra = redactMap(t.Extra)
	return out
}

func isSecretFlag(a string) bool {
	return strings.HasPrefix(a, "-") && !strings.Contains(a, "=") && secretKey(strings.TrimLeft(a, "-"))
}

// secretKey reports whether a setting or flag named k holds a secret
// (password_encryption, a method name, does not).
func secretKey(k string) bool {
	k = strings.ToLower(k)
	if k == "password_encryption" {
		return false
	}
	return strings.Contains(k, "password") || strings.Contains(k, "passwd") || strings.Contains(k, "secret") || strings.Contains(k, "token")
}

// WriteTestInfo writes info as path (test.json), passwords redacted, through
// a temporary file renamed into place.
func WriteTestInfo(path string, info *TestInfo) error {
	r := info.redacted()
	if r.Schema == 0 {
		r.Schema = TestInfoSchema
	}
	b, err := json.MarshalIndent(&r, "", "  ")
	if err != nil {
		return fmt.Errorf("write test info: %w", err)
	}
	return WriteFileAtomic(path, append(b, '\n'))
}

// ReadTestInfo reads test.json at path. Another schema version is an error.
func ReadTestInfo(path string) (*TestInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read test info: %w", err)
	}
	var info TestInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("read test info %s: %w", path, err)
	}
	if info.Schema != TestInfoSchema {
		return nil, fmt.Errorf("read test info %s: schema %d, this strongcheck reads %d", path, info.Schema, TestInfoSchema)
	}
	if lv, ok := info.Extra["isolation"]; ok {
		if info.Isolation == "" {
			info.Isolation = Isolation(lv)
		}
		delete(info.Extra, "isolation")
	}
	return &info, nil
}

// WriteFileAtomic writes data to a temporary file next to path, fsyncs it and
// renames it over path, so a reader sees the old file or the new one whole.
func WriteFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

var (
	runNameRE   = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}\.[0-9]{3}Z(-[0-9]{1,4})?$`)
	safeNameRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	publishedAt = map[string]bool{TestJSONName: true, HistoryName: true, ResultsJSONName: true, LagName: true,
		ReportHTMLName: true, SummaryMDName: true, JUnitXMLName: true}
)

// IsRunName reports whether name can name a run folder inside a test's
// folder (NewRun's start time, maybe suffixed "-2", ...).
func IsRunName(name string) bool { return runNameRE.MatchString(name) }

// Published reports whether rel, a slash-separated path relative to a run
// folder, is a file a run publishes: test.json, history.jsonl, lag.jsonl,
// results.json, report.html, summary.md, junit.xml, a porcupine
// visualization (PorcupineHTMLName) or a node log (logs/<node>.log).
// Anything else in the folder (the backend's own folder, temporary files)
// is not for readers of the store.
func Published(rel string) bool {
	if publishedAt[rel] {
		return true
	}
	if name, ok := strings.CutPrefix(rel, LogsDirName+"/"); ok {
		return strings.HasSuffix(name, ".log") && isSafeName(name)
	}
	if key, ok := strings.CutPrefix(rel, "linearizable-"); ok {
		return strings.HasSuffix(key, ".html") && isSafeName(rel)
	}
	return false
}

func isSafeName(name string) bool {
	return safeNameRE.MatchString(name) && !strings.HasPrefix(name, ".")
}

// RunInfo describes one stored run for a listing.
type RunInfo struct {
	Run  Run
	Test string
	// Start is the start time from test.json, or else from the folder name.
	Start time.Time
	// Info is test.json, nil when missing or unreadable (InfoErr says why).
	Info    *TestInfo
	InfoErr error
	// Verdict is results.json's verdict ("valid", "invalid", "unknown"),
	// "" when there is no readable results.json (VerdictErr says why).
	Verdict    string
	VerdictErr error
	// HasReport says whether report.html exists.
	HasReport bool
}

// List returns every run in the store, newest first (ties by name). A
// missing store is an empty list. Runs whose files cannot be read are
// listed with the reason.
func (s Store) List() ([]RunInfo, error) {
	tests, err := os.ReadDir(s.Dir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list store: %w", err)
	}
	var out []RunInfo
	for _, t := range tests {
		if !t.IsDir() || ValidTestName(t.Name()) != nil {
			continue // latest links, temporary files
		}
		runs, err := os.ReadDir(filepath.Join(s.Dir(), t.Name()))
		if err != nil {
			return nil, fmt.Errorf("list store: %w", err)
		}
		for _, r := range runs {
			if !r.IsDir() || !IsRunName(r.Name()) {
				continue // latest links, a folder a user made there
			}
			out = append(out, readRunInfo(t.Name(), Run{Dir: filepath.Join(s.Dir(), t.Name(), r.Name())}))
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.After(out[j].Start)
		}
		return out[i].Run.Dir > out[j].Run.Dir
	})
	return out, nil
}

func readRunInfo(test string, run Run) RunInfo {
	ri := RunInfo{Run: run, Test: test}
	ri.Info, ri.InfoErr = ReadTestInfo(run.TestJSON())
	if ri.Info != nil && !ri.Info.StartTime.IsZero() {
		ri.Start = ri.Info.StartTime
	} else {
		name := filepath.Base(run.Dir)
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		ri.Start, _ = time.Parse(RunTimeFormat, name)
	}
	ri.Verdict, ri.VerdictErr = ReadVerdict(run.ResultsJSON())
	_, err := os.Stat(run.ReportHTML())
	ri.HasReport = err == nil
	return ri
}

// ReadVerdict returns the verdict field of the results.json at path without
// decoding the rest (this package cannot know the checker's types).
func ReadVerdict(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read verdict: %w", err)
	}
	var v struct {
		Verdict string `json:"verdict"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return "", fmt.Errorf("read verdict %s: %w", path, err)
	}
	return v.Verdict, nil
}
