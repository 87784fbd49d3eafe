package results

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNewRunLayoutAndLatestLinks(t *testing.T) {
	s := Store{Root: filepath.Join(t.TempDir(), "store")}
	t0 := time.Date(2026, 11, 28, 20, 15, 0, 0, time.FixedZone("CET", 3600))

	r1, err := s.NewRun("register", t0)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(s.Root, "register", "20261128T191500.000Z"); r1.Dir != want {
		t.Errorf("run folder %s, want %s (named by the UTC start time)", r1.Dir, want)
	}
	if st, err := os.Stat(r1.LogsDir()); err != nil || !st.IsDir() {
		t.Errorf("logs folder: %v", err)
	}
	if got := r1.Name(); got != "register/20261128T191500.000Z" {
		t.Errorf("Name() = %q", got)
	}

	// Same millisecond: a suffixed folder, never a shared one.
	r2, err := s.NewRun("register", t0)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Dir != r1.Dir+"-2" {
		t.Errorf("second run in the same ms: %s, want %s-2", r2.Dir, r1.Dir)
	}
	r3, err := s.NewRun("set", t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}

	for link, want := range map[string]string{
		filepath.Join(s.Root, "register", "latest"): "20261128T191500.000Z-2",
		filepath.Join(s.Root, "set", "latest"):      "20261128T191501.000Z",
		filepath.Join(s.Root, "latest"):             filepath.Join("set", "20261128T191501.000Z"),
	} {
		got, err := os.Readlink(link)
		if err != nil || got != want {
			t.Errorf("%s -> %q (%v), want relative %q", link, got, err, want)
		}
	}

	if _, err := s.Latest(""); err == nil {
		t.Error("Latest of a run without any file should fail (OpenRun)")
	}
	if err := WriteFileAtomic(r3.TestJSON(), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	latest, err := s.Latest("")
	if err != nil {
		t.Fatal(err)
	}
	real3, _ := filepath.EvalSymlinks(r3.Dir)
	if latest.Dir != real3 {
		t.Errorf("Latest = %s, want %s", latest.Dir, real3)
	}

	entries, err := os.ReadDir(s.Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left in the store: %s", e.Name())
		}
	}
}

func TestValidTestName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"register", true},
		{"register+set_kill-primary.v2", true},
		{"", false},
		{"latest", false},
		{".hidden", false},
		{"../escape", false},
		{"a/b", false},
		{"with space", false},
		{strings.Repeat("x", 101), false},
	} {
		if err := ValidTestName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidTestName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if _, err := (Store{Root: t.TempDir()}).NewRun("../x", time.Now()); err == nil {
		t.Error("NewRun accepted ../x")
	}
}

func TestOpenRun(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenRun(dir); err == nil || !strings.Contains(err.Error(), "not a run folder") {
		t.Errorf("empty folder: %v, want 'not a run folder'", err)
	}
	if _, err := OpenRun(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing folder opened")
	}
	if err := os.WriteFile(filepath.Join(dir, HistoryName), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := OpenRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	for got, want := range map[string]string{
		r.History():               filepath.Join(r.Dir, "history.jsonl"),
		r.NodeLog("n1"):           filepath.Join(r.Dir, "logs", "n1.log"),
		r.PorcupineHTML("../etc"): filepath.Join(r.Dir, "linearizable-.._etc.html"),
		r.Lag():                   filepath.Join(r.Dir, "lag.jsonl"),
	} {
		if got != want {
			t.Errorf("path %s, want %s", got, want)
		}
	}
}

func TestTestInfoRoundTripRedactsPasswords(t *testing.T) {
	path := filepath.Join(t.TempDir(), TestJSONName)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	in := &TestInfo{
		Name:    "register",
		Command: []string{"strongcheck", "test", "--seed", "7", "--db-password=hunter2", "--password", "hunter3", "--dsn", "postgres://u:hunter4@h/db"},
		Seed:    7, StartTime: start, Backend: "local", Nodes: []string{"n1", "n2", "n3"},
		Settings: map[string]string{
			"synchronous_commit":            "on",
			"password_encryption":           "scram-sha-256",
			"primary_conninfo":              "host=10.0.0.1 user=rep password=hunter5 application_name=n2",
			"ssl_passphrase_command_secret": "hunter6",
		},
		TimeLimitNS: int64(60 * time.Second),
	}
	if err := WriteTestInfo(path, in); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "hunter3", "hunter4", "hunter5", "hunter6"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("test.json holds the password %q:\n%s", secret, raw)
		}
	}
	out, err := ReadTestInfo(path)
	if err != nil {
		t.Fatal(err)
	}
	if out.Schema != TestInfoSchema || !out.StartTime.Equal(start) || out.TimeLimit() != 60*time.Second {
		t.Errorf("round trip: %+v", out)
	}
	if got := out.Settings["password_encryption"]; got != "scram-sha-256" {
		t.Errorf("password_encryption = %q: a method name is no secret", got)
	}
	if got := out.Settings["primary_conninfo"]; got != "host=10.0.0.1 user=rep password=REDACTED application_name=n2" {
		t.Errorf("primary_conninfo = %q", got)
	}
	wantCmd := []string{"strongcheck", "test", "--seed", "7", "--db-password=REDACTED", "--password", "REDACTED", "--dsn", "postgres://u:REDACTED@h/db"}
	if !reflect.DeepEqual(out.Command, wantCmd) {
		t.Errorf("command = %q, want %q", out.Command, wantCmd)
	}
	if in.Command[4] != "--db-password=hunter2" {
		t.Error("WriteTestInfo modified the caller's TestInfo")
	}

	if err := os.WriteFile(path, []byte(`{"schema":99}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTestInfo(path); err == nil || !strings.Contains(err.Error(), "schema 99") {
		t.Errorf("another schema: %v", err)
	}
}

func TestStoreList(t *testing.T) {
	s := Store{Root: filepath.Join(t.TempDir(), "store")}
	if runs, err := s.List(); err != nil || len(runs) != 0 {
		t.Fatalf("missing store: %v %v, want empty", runs, err)
	}

	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	mk := func(test string, at time.Time, verdict string, withInfo bool) Run {
		t.Helper()
		r, err := s.NewRun(test, at)
		if err != nil {
			t.Fatal(err)
		}
		if withInfo {
			if err := WriteTestInfo(r.TestJSON(), &TestInfo{Name: test, StartTime: at, Seed: 1}); err != nil {
				t.Fatal(err)
			}
		}
		if verdict != "" {
			if err := os.WriteFile(r.ResultsJSON(), []byte(`{"schema":1,"verdict":"`+verdict+`"}`), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return r
	}
	old := mk("register", base, "valid", true)
	mid := mk("set", base.Add(time.Minute), "invalid", true)
	newest := mk("register", base.Add(2*time.Minute), "", false) // killed before anything was written
	if err := os.WriteFile(newest.ReportHTML(), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	runs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 {
		t.Fatalf("%d runs listed, want 3 (latest links are not runs)", len(runs))
	}
	var dirs []string
	for _, r := range runs {
		dirs = append(dirs, r.Run.Dir)
	}
	if want := []string{newest.Dir, mid.Dir, old.Dir}; !reflect.DeepEqual(dirs, want) {
		t.Errorf("order %q, want newest first %q", dirs, want)
	}
	if !runs[0].Start.Equal(base.Add(2*time.Minute)) || runs[0].InfoErr == nil || runs[0].VerdictErr == nil || !runs[0].HasReport {
		t.Errorf("run without test.json/results.json: %+v", runs[0])
	}
	if runs[1].Verdict != "invalid" || runs[1].Test != "set" || runs[2].Verdict != "valid" || runs[2].HasReport {
		t.Errorf("runs: %+v / %+v", runs[1], runs[2])
	}
}

func TestLagRoundTripAndTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), LagName)
	w, err := CreateLag(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []LagSample{
		{TimeNS: 1e9, Node: "n2", Primary: "n1", LagBytes: 120, ReplayLagNS: 300000, SyncState: "quorum"},
		{TimeNS: 1e9, Node: "n3", Primary: "n1", LagBytes: 0, ReplayLagNS: -1},
	}
	for _, s := range want {
		if err := w.Append(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(want[0]); err == nil {
		t.Error("append after close succeeded")
	}
	got, torn, err := ReadLagFile(path)
	if err != nil || torn || !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %+v torn=%v err=%v", got, torn, err)
	}

	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"time_ns":2000000000,"node":"n`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, torn, err = ReadLagFile(path)
	if err != nil || !torn || !reflect.DeepEqual(got, want) {
		t.Errorf("torn file: %+v torn=%v err=%v", got, torn, err)
	}

	if _, _, err := ReadLag(strings.NewReader("not json\n{}\n")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad line: %v, want ErrCorrupt", err)
	}
}

// The isolation level has a field of its own; a test.json stored when it
// travelled as extra.isolation still loads, with the level in its field.
func TestTestInfoIsolation(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.json")
	body := fmt.Sprintf(`{"schema":%d,"name":"append","seed":1,"backend":"local","nodes":["n1","n2"],"extra":{"isolation":"repeatable-read","read_all_keys":"true"}}`, TestInfoSchema)
	if err := os.WriteFile(old, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := ReadTestInfo(old)
	if err != nil {
		t.Fatal(err)
	}
	if info.Isolation != RepeatableRead {
		t.Errorf("old run: isolation %q, want %q", info.Isolation, RepeatableRead)
	}
	if _, ok := info.Extra["isolation"]; ok || info.Extra["read_all_keys"] != "true" {
		t.Errorf("old run: extra %v: isolation moved out, the rest kept", info.Extra)
	}

	path := filepath.Join(dir, TestJSONName)
	if err := WriteTestInfo(path, &TestInfo{Name: "append", Isolation: Serializable}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"isolation": "serializable"`) {
		t.Errorf("test.json names the level plainly: %s", raw)
	}
	back, err := ReadTestInfo(path)
	if err != nil || back.Isolation != Serializable {
		t.Fatalf("round trip: %v %v", back, err)
	}
}
