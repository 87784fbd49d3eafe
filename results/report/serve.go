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

// Handler serves the store for a browser: GET / lists every run, newest
// first, with its verdict's colour and links to its report, summary, JUnit
// file and folder; GET /runs/... serves the store's files read-only. Files
// are opened through an os.Root on the store, so no path, ".." or link can
// reach outside it; anything not found is a 404. The store is read on every
// request, so runs that appear later are listed. The CLI should listen on
// 127.0.0.1 unless told otherwise.
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
	root, err := os.OpenRoot(store.Dir())
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer root.Close()
	name := strings.TrimPrefix(r.URL.Path, RunsPrefix)
	// Only clean, relative paths: fs.ValidPath rejects "..", "." and empty
	// elements; os.Root then refuses any link that leaves the store.
	clean := strings.TrimSuffix(name, "/")
	if clean == "" {
		clean = "."
	}
	if !fs.ValidPath(clean) || path.Clean(clean) != clean {
		http.NotFound(w, r)
		return
	}
	req := r.Clone(r.Context())
	req.URL.Path = "/" + name
	http.FileServerFS(notFoundFS{root.FS()}).ServeHTTP(w, req)
}

// notFoundFS turns every error opening a file into fs.ErrNotExist, so that a
// path the os.Root refuses (a link out of the store) is a plain 404 that
// says nothing about what lies outside.
type notFoundFS struct{ fsys fs.FS }

func (n notFoundFS) Open(name string) (fs.File, error) {
	f, err := n.fsys.Open(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return f, nil
}
