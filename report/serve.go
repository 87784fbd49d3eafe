package report

import (
	"bytes"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/results"
)

// RunsPrefix is the URL path under which Handler serves the store's files:
// /runs/<test>/<time>/report.html, /runs/latest/summary.md, ...
const RunsPrefix = "/runs/"

var indexTmpl = template.Must(template.New("index.html.tmpl").Funcs(funcs).ParseFS(templateFS, "templates/index.html.tmpl"))

type indexRow struct {
	Base      string // URL of the run folder, ending in /
	Name      string
	Test      string
	Start     string
	Verdict   string
	Class     string
	Seed      string
	Duration  string
	What      string
	HasReport bool
	Problem   string
}

// Timeouts of the server NewServer makes: a client gets ReadHeaderTimeout
// to send its request's headers (a slow client cannot hold connections
// open for free) and WriteTimeout to take the answer, long enough for a
// history of hundreds of megabytes over a slow link.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 10 * time.Minute
	IdleTimeout       = 2 * time.Minute
)

// NewServer is the HTTP server of `strongcheck serve`: Handler(store) with
// the timeouts above. The caller chooses the listener; it should be on
// 127.0.0.1 unless told otherwise.
func NewServer(store results.Store) *http.Server {
	return &http.Server{
		Handler:           Handler(store),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
}

// Handler serves the store for a browser: GET / lists every run, newest
// first, with its verdict's colour and links to its report, summary, JUnit
// file, results and history; GET /runs/<test>/<time>/<file> (also
// /runs/<test>/latest/... and /runs/latest/...) serves the files a run
// publishes (results.Published) and nothing else: no folder listing, not
// the backend's cluster folder, nothing a run does not publish; everything
// else is a 404. Files are opened through an os.Root on the store, so no
// link can reach outside it. The store is read on every request, so runs
// that appear later are listed.
func Handler(store results.Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { serveIndex(w, store) })
	mux.HandleFunc("GET /runs/", func(w http.ResponseWriter, r *http.Request) { serveFile(w, r, store) })
	return mux
}

func serveIndex(w http.ResponseWriter, store results.Store) {
	runs, err := store.List()
	if err != nil {
		http.Error(w, "cannot list the store: "+err.Error(), http.StatusInternalServerError)
		return
	}
	rows := make([]indexRow, 0, len(runs))
	for _, ri := range runs {
		name := ri.Run.Name()
		parts := strings.SplitN(name, "/", 2)
		row := indexRow{
			Base:      RunsPrefix + url.PathEscape(parts[0]) + "/" + url.PathEscape(parts[len(parts)-1]) + "/",
			Name:      name,
			Test:      ri.Test,
			Verdict:   verdictWord(checker.Verdict(ri.Verdict)),
			Class:     verdictClass(checker.Verdict(ri.Verdict)),
			HasReport: ri.HasReport,
		}
		if !ri.Start.IsZero() {
			row.Start = ri.Start.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		if i := ri.Info; i != nil {
			row.Seed = fmtNum(i.Seed)
			if !i.EndTime.IsZero() {
				row.Duration = fmtDur(int64(i.EndTime.Sub(i.StartTime)))
			} else if i.TimeLimitNS > 0 {
				row.Duration = "limit " + fmtDur(i.TimeLimitNS)
			}
			row.What = strings.Join(append(append([]string{}, i.Workloads...), i.Nemeses...), ", ")
		}
		if ri.VerdictErr != nil {
			row.Problem = "results.json: " + shortErr(ri.VerdictErr)
		}
		rows = append(rows, row)
	}
	var buf bytes.Buffer
	if err := indexTmpl.Execute(&buf, struct {
		Store string
		Runs  []indexRow
	}{store.Dir(), rows}); err != nil {
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

func shortErr(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "missing"
	}
	return err.Error()
}

func serveFile(w http.ResponseWriter, r *http.Request, store results.Store) {
	name, ok := publishedPath(strings.TrimPrefix(r.URL.Path, RunsPrefix))
	if !ok {
		http.NotFound(w, r)
		return
	}
	root, err := os.OpenRoot(store.Dir())
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer root.Close()
	// Any error, a link the os.Root refuses included, is a plain 404
	// that says nothing about what lies outside.
	f, err := root.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	if ct, ok := textTypes[path.Ext(name)]; ok {
		w.Header().Set("Content-Type", ct)
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, path.Base(name), st.ModTime(), f)
}

// textTypes are the content types of the published files a browser
// should show as text.
var textTypes = map[string]string{
	".jsonl": "text/plain; charset=utf-8",
	".md":    "text/plain; charset=utf-8",
	".log":   "text/plain; charset=utf-8",
	".json":  "application/json",
	".xml":   "application/xml",
	".html":  "text/html; charset=utf-8",
}

// publishedPath maps the part of a URL after RunsPrefix to a path in the
// store when it names a published file of a run: latest/<file>,
// <test>/latest/<file> or <test>/<time>/<file>.
func publishedPath(p string) (string, bool) {
	parts := strings.Split(p, "/")
	var rel []string
	switch {
	case len(parts) >= 2 && parts[0] == results.LatestName:
		rel = parts[1:]
	case len(parts) >= 3 && results.ValidTestName(parts[0]) == nil &&
		(parts[1] == results.LatestName || results.IsRunName(parts[1])):
		rel = parts[2:]
	default:
		return "", false
	}
	if !results.Published(strings.Join(rel, "/")) {
		return "", false
	}
	return p, true
}
