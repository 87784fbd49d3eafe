package report

import (
	"io"
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
	// A link inside a run pointing out of the store must not be followed.
	if err := os.Symlink(secret, filepath.Join(newer.Dir, "escape.txt")); err != nil {
		t.Fatal(err)
	}

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
	iNew, iDead, iOld := strings.Index(body, newer.Name()), strings.Index(body, dead.Name()), strings.Index(body, older.Name())
	if iNew < 0 || iDead < 0 || iOld < 0 || !(iNew < iDead && iDead < iOld) {
		t.Errorf("listing order: newer %d, crashed %d, older %d; want newest first", iNew, iDead, iOld)
	}
	for _, want := range []string{
		`<tr class="invalid">`, `<tr class="valid">`, `<tr class="none">`,
		`href="/runs/register-set/20261128T211500.000Z/report.html"`,
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
		{"/runs/register-set/20261128T201500.000Z/", 200, "history.jsonl"}, // folder listing
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

func TestHandlerEmptyStore(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler(results.Store{Root: filepath.Join(t.TempDir(), "none")}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "No runs yet.") {
		t.Errorf("empty store: %d %s", rec.Code, rec.Body.String())
	}
}
