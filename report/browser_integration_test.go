package report

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/results"
)

// artifactsEnv names a folder where integration tests keep what a person
// may want to look at afterwards (screenshots).
const artifactsEnv = "STRONGCHECK_ARTIFACTS"

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

type browser struct {
	bin, profile string
}

// consoleProblem matches what Chromium logs to stderr for a page's console
// errors, uncaught exceptions and resources it could not load.
var consoleProblem = regexp.MustCompile(`(?m)^.*(:CONSOLE|Uncaught|Failed to load resource).*$`)

// open loads url headless, once for the DOM and once for a screenshot, and
// returns the DOM, the console problems seen and the load time of the DOM
// run (browser start included).
func (b browser) open(t *testing.T, url, screenshot string) (dom string, problems []string, took time.Duration) {
	t.Helper()
	run := func(extra ...string) (string, string, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		args := append([]string{
			"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--disable-dev-shm-usage", "--user-data-dir=" + b.profile,
			"--enable-logging=stderr", "--v=0", "--hide-scrollbars", "--window-size=1280,2600",
		}, extra...)
		args = append(args, url)
		cmd := exec.CommandContext(ctx, b.bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", extra, err, stderr.String())
		}
		return stdout.String(), stderr.String(), time.Since(t0)
	}
	dom, stderr, took := run("--dump-dom")
	problems = consoleProblem.FindAllString(stderr, -1)
	if screenshot != "" {
		_, stderr2, _ := run("--screenshot=" + screenshot)
		problems = append(problems, consoleProblem.FindAllString(stderr2, -1)...)
		if _, err := os.Stat(screenshot); err != nil {
			t.Fatalf("no screenshot: %v\n%s", err, stderr2)
		}
	}
	return dom, problems, took
}

// printPDF prints url to a PDF file, as a reader printing the report would.
func (b browser) printPDF(t *testing.T, url, pdf string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir="+b.profile, "--no-pdf-header-footer", "--print-to-pdf="+pdf, url)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("print to pdf: %v\n%s", err, out)
	}
}

// countColor counts the screenshot's pixels within 40 of c on each channel.
func countColor(t *testing.T, path string, c color.NRGBA) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	near := func(a uint32, b uint8) bool { d := int(a>>8) - int(b); return d > -40 && d < 40 }
	n := 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r, c.R) && near(g, c.G) && near(bl, c.B) {
				n++
			}
		}
	}
	return n
}

func TestIntegrationBrowserReportAndServe(t *testing.T) {
	skipUnderRace(t)
	bin := findChromium()
	if bin == "" {
		t.Skip("Chromium is not installed (Debian: apt-get install -y chromium)")
	}
	artifacts := os.Getenv(artifactsEnv)
	if artifacts == "" {
		artifacts = t.TempDir()
	} else {
		artifacts = filepath.Join(artifacts, "report-browser")
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	b := browser{bin: bin, profile: t.TempDir()}

	store := results.Store{Root: filepath.Join(t.TempDir(), "store")}
	valid := &checker.Result{Schema: checker.ResultSchema, Verdict: checker.Valid, Ops: 4000, Checks: []checker.Check{
		{Name: checker.NameRPO, Verdict: checker.Valid, Summary: "All 1000 acknowledged writes survived.", RPO: &checker.RPOResult{Acknowledged: 1000}},
	}}
	storedRun(t, store, fixtureStart, genHistory(2000, 10, defaultFaults), valid)
	// SVG plots: a few thousand operations.
	small := storedRun(t, store, fixtureStart.Add(time.Hour), genHistory(5000, 10, defaultFaults), fixtureResult())
	// PNG latency plot: a 60 s run's worth of operations.
	big := storedRun(t, store, fixtureStart.Add(2*time.Hour), genHistory(300000, 60, defaultFaults), fixtureResult())

	// The console scan can fail: a page with a console error is caught.
	bad := filepath.Join(t.TempDir(), "bad.html")
	writeFile(t, bad, `<!DOCTYPE html><html><body><script>console.error("strongcheck-canary")</script></body></html>`)
	if _, problems, _ := b.open(t, "file://"+bad, ""); len(problems) == 0 {
		t.Fatal("the console scan did not see a deliberate console.error: it cannot be trusted")
	}

	for _, tc := range []struct {
		name    string
		run     results.Run
		wantDOM []string
	}{
		{"report-svg", small, []string{`id="verdict"`, "<svg", "Latency of every client operation", "Lost writes"}},
		{"report-png", big, []string{`id="verdict"`, `<img src="data:image/png;base64,`, "300000 operations drawn as"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shot := filepath.Join(artifacts, tc.name+".png")
			dom, problems, took := b.open(t, "file://"+tc.run.ReportHTML(), shot)
			for _, w := range tc.wantDOM {
				if !strings.Contains(dom, w) {
					t.Errorf("DOM lacks %q", w)
				}
			}
			if len(problems) > 0 {
				t.Errorf("console problems:\n%s", strings.Join(problems, "\n"))
			}
			red := countColor(t, shot, color.NRGBA{R: 0xcf, G: 0x22, B: 0x2e})
			blue := countColor(t, shot, color.NRGBA{R: 0x1f, G: 0x77, B: 0xb4})
			if red < 5000 || blue < 200 {
				t.Errorf("screenshot shows %d verdict-red and %d ok-blue pixels: banner or plot not drawn", red, blue)
			}
			pdf := filepath.Join(artifacts, tc.name+".pdf")
			b.printPDF(t, "file://"+tc.run.ReportHTML(), pdf)
			if head := readFile(t, pdf); !strings.HasPrefix(head, "%PDF") || len(head) < 20000 {
				t.Errorf("printed report: %d bytes, PDF header %v", len(head), strings.HasPrefix(head, "%PDF"))
			}
			st, _ := os.Stat(tc.run.ReportHTML())
			t.Logf("%s: %.2f MB, headless load incl. browser start %v, screenshot %s", tc.name, float64(st.Size())/1e6, took.Round(time.Millisecond), shot)
		})
	}

	t.Run("serve", func(t *testing.T) {
		srv := httptest.NewServer(Handler(store)) // listens on 127.0.0.1
		defer srv.Close()
		shot := filepath.Join(artifacts, "serve.png")
		dom, problems, _ := b.open(t, srv.URL+"/", shot)
		if len(problems) > 0 {
			t.Errorf("console problems:\n%s", strings.Join(problems, "\n"))
		}
		i1 := strings.Index(dom, big.Name())
		i2 := strings.Index(dom, small.Name())
		if i1 < 0 || i2 < 0 || i1 > i2 {
			t.Errorf("listing not newest first: %s at %d, %s at %d", big.Name(), i1, small.Name(), i2)
		}
		if c := strings.Count(dom, `class="tag invalid"`); c != 2 {
			t.Errorf("%d invalid tags, want 2", c)
		}
		if c := strings.Count(dom, `class="tag valid"`); c != 1 {
			t.Errorf("%d valid tags, want 1", c)
		}
		// The report opens through the server too, from the latest link.
		rdom, problems, _ := b.open(t, srv.URL+"/runs/latest/report.html", filepath.Join(artifacts, "serve-report.png"))
		if !strings.Contains(rdom, `id="verdict"`) || len(problems) > 0 {
			t.Errorf("report through serve: verdict present %v, problems %v", strings.Contains(rdom, `id="verdict"`), problems)
		}
		t.Logf("screenshot %s", shot)
	})
	fmt.Fprintln(os.Stderr, "browser test artifacts in", artifacts)
}
