package report

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/results"
)

func TestHandler(t *testing.T) {
	dir := t.TempDir()
	store := results.Store{Root: filepath.Join(dir, "store")}
	secret := filepath.Join(dir, "secret.txt")
	writeFile(t, secret, "do not serve")

	valid := &checker.Result{Schema: checker.ResultSchema, Verdict: checker.Valid, Checks: []checker.Check{{Name: checker.NameRPO, Verdict: checker.Valid}}}
	older := storedRun(t, store, fixtureStart, genHistory(500, 10, defaultFaults), valid)
	// A run that died before its result: listed, without a verdict.
	dead, err := store.NewRun("crashed", fixtureStart.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	newer := storedRun(t, store, fixtureStart.Add(time.Hour), genHistory(500, 10, defaultFaults), fixtureResult())
	// A link inside a run pointing out of the store must not be followed,
	// not even under a published name.
	if err := os.Symlink(secret, filepath.Join(newer.Dir, "escape.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(older.SummaryMD()); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, older.SummaryMD()); err != nil {
		t.Fatal(err)
	}
	// What a cluster folder held before its secrets moved out, and still
	// may after an older strongcheck: a run's cluster/ and `cluster up`'s
	// old default --dir, store/cluster.
	for _, p := range []string{
		filepath.Join(newer.Dir, "cluster", "secrets.json"),
		filepath.Join(newer.Dir, "cluster", "data", "pgpass"),
		filepath.Join(newer.Dir, "cluster", "data", "n1", "postgresql.auto.conf"),
		filepath.Join(newer.Dir, "cluster", "cluster.json"),
		filepath.Join(newer.Dir, "cluster", "logs", "n1.log"),
		filepath.Join(newer.Dir, "logs", "pgpass"),
		filepath.Join(newer.Dir, ".results.json.tmp-1"),
		filepath.Join(store.Dir(), "cluster", "secrets.json"),
		filepath.Join(store.Dir(), "cluster", "data", "pgpass"),
		filepath.Join(store.Dir(), "register-set", "secrets.json"),
		filepath.Join(store.Dir(), "secrets.json"),
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, "do not serve")
	}
	writeFile(t, filepath.Join(newer.Dir, results.PorcupineHTMLName("k1")), "<html>porcupine</html>")

	srv := httptest.NewServer(Handler(store))
	defer srv.Close()
	var get func(path string) (int, string)
	get = func(path string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Transport{}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 == 3 {
			// ServeMux answers a path with ".." by redirecting to its
			// clean form; follow it once.
			loc, err := resp.Location()
			if err != nil {
				t.Fatal(err)
			}
			return get(loc.RequestURI())
		}
		return resp.StatusCode, string(b)
	}

	code, body := get("/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d", code)
	}
	if strings.Contains(body, "/runs/cluster/") {
		t.Error("the listing shows a cluster folder as a run")
	}
	iNew, iDead, iOld := strings.Index(body, newer.Name()), strings.Index(body, dead.Name()), strings.Index(body, older.Name())
	if iNew < 0 || iDead < 0 || iOld < 0 || !(iNew < iDead && iDead < iOld) {
		t.Errorf("listing order: newer %d, crashed %d, older %d; want newest first", iNew, iDead, iOld)
	}
	for _, want := range []string{
		`<tr class="invalid">`, `<tr class="valid">`, `<tr class="none">`,
		`href="/runs/register-set/20261128T211500.000Z/report.html"`,
		`href="/runs/register-set/20261128T211500.000Z/history.jsonl"`,
		`results.json: missing`, `no report`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("listing lacks %q", want)
		}
	}

	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/runs/register-set/20261128T211500.000Z/report.html", 200, `id="verdict"`},
		{"/runs/latest/summary.md", 200, "INVALID"}, // the store-wide latest link
		{"/runs/register-set/latest/logs/n1.log", 200, "database system is ready"},
		{"/runs/latest/logs/n2.log", 200, "database system is ready"},
		{"/runs/register-set/20261128T211500.000Z/history.jsonl", 200, `"type":"invoke"`},
		{"/runs/register-set/20261128T211500.000Z/lag.jsonl", 200, "n2"},
		{"/runs/register-set/20261128T211500.000Z/test.json", 200, `"seed"`},
		{"/runs/register-set/20261128T211500.000Z/results.json", 200, `"verdict"`},
		{"/runs/register-set/20261128T211500.000Z/junit.xml", 200, "<testsuite"},
		{"/runs/register-set/20261128T211500.000Z/linearizable-k1.html", 200, "porcupine"},
		// No folder listings.
		{"/runs/", 404, ""},
		{"/runs/latest/", 404, ""},
		{"/runs/register-set/", 404, ""},
		{"/runs/register-set/20261128T201500.000Z/", 404, ""},
		{"/runs/register-set/20261128T201500.000Z/logs/", 404, ""},
		{"/runs/register-set/latest/logs", 404, ""},
		// Nothing a run does not publish: no cluster folder, no secret.
		{"/runs/register-set/20261128T211500.000Z/cluster/secrets.json", 404, ""},
		{"/runs/register-set/20261128T211500.000Z/cluster/data/pgpass", 404, ""},
		{"/runs/register-set/20261128T211500.000Z/cluster/data/n1/postgresql.auto.conf", 404, ""},
		{"/runs/register-set/20261128T211500.000Z/cluster/cluster.json", 404, ""},
		{"/runs/register-set/20261128T211500.000Z/cluster/logs/n1.log", 404, ""},
		{"/runs/register-set/20261128T211500.000Z/cluster/", 404, ""},
		{"/runs/register-set/latest/cluster/secrets.json", 404, ""},
		{"/runs/latest/cluster/data/pgpass", 404, ""},
		{"/runs/register-set/20261128T211500.000Z/logs/pgpass", 404, ""},
		{"/runs/register-set/20261128T211500.000Z/.results.json.tmp-1", 404, ""},
		{"/runs/cluster/secrets.json", 404, ""},
		{"/runs/cluster/data/pgpass", 404, ""},
		{"/runs/register-set/secrets.json", 404, ""},
		{"/runs/secrets.json", 404, ""},
		{"/runs/register-set/20261128T201500.000Z/summary.md", 404, ""}, // a link out of the store
		{"/runs/register-set/20261128T211500.000Z/escape.txt", 404, ""},
		{"/runs/../secret.txt", 404, ""},
		{"/runs/..%2fsecret.txt", 404, ""},
		{"/runs/register-set/..%2f..%2fsecret.txt", 404, ""},
		{"/runs/%2e%2e/secret.txt", 404, ""},
		{"/runs/register-set/20261128T211500.000Z/missing.html", 404, ""},
		{"/elsewhere", 404, ""},
	} {
		code, body := get(tc.path)
		if strings.Contains(body, "do not serve") {
			t.Errorf("%s served a file outside the store", tc.path)
		}
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d (want %d), body has %q: %v", tc.path, code, tc.code, tc.want, strings.Contains(body, tc.want))
		}
	}

	req := httptest.NewRequest(http.MethodPost, "/", nil)
	rec := httptest.NewRecorder()
	Handler(store).ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405: the server is read-only", rec.Code)
	}
}

// NewServer bounds how long a client may take: one that never finishes its
// request headers is cut off after ReadHeaderTimeout.
func TestNewServerTimeouts(t *testing.T) {
	srv := NewServer(results.Store{Root: t.TempDir()})
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Fatalf("server without a bound: %+v", srv)
	}
	srv.ReadHeaderTimeout = 200 * time.Millisecond // the behaviour, quickly
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n")); err != nil { // never ends
		t.Fatal(err)
	}
	t0 := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(conn)
	if el := time.Since(t0); err != nil || el > 5*time.Second {
		t.Errorf("a request that never finished its headers held the connection %v (err %v)", el, err)
	}
}

func TestHandlerEmptyStore(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler(results.Store{Root: filepath.Join(t.TempDir(), "none")}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "No runs yet.") {
		t.Errorf("empty store: %d %s", rec.Code, rec.Body.String())
	}
}
