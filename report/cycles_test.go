package report

import (
	"context"
	"encoding/xml"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/checker/elle"
	"github.com/strongcheck/strongcheck/internal/histgen"
	"github.com/strongcheck/strongcheck/results"
)

// longFork is a history with a long fork (G-nonadjacent) read across two
// nodes, whose node names need escaping.
func longFork() *elle.Result {
	rd := func(k int64, v ...int64) results.Mop { return results.ReadOf(k, append([]int64{}, v...)) }
	txn := func(p int, node string, mops ...results.Mop) histgen.Txn {
		return histgen.Txn{Process: p, Node: node, Inv: 0, Comp: 10, Type: results.OK, Mops: mops}
	}
	ops := histgen.Layout([]histgen.Txn{
		txn(0, "n1", results.Append(1, 1)), txn(1, "n1", results.Append(2, 1)),
		txn(2, "n1", rd(1, 1), rd(2)), txn(3, "<n2&>", rd(1), rd(2, 1)),
	})
	return elle.Check(context.Background(), ops, elle.Options{Model: "snapshot-isolation"})
}

func TestListAppendSection(t *testing.T) {
	r := longFork()
	require.Equal(t, elle.Invalid, r.Verdict, r.Summary)
	html := string(listAppendHTML(r))
	for _, want := range []string{
		`<h4 id="la-G-nonadjacent">G-nonadjacent: 1</h4>`,
		`snapshot-isolation <b>(judged)</b>`,
		`<span class="tag invalid">ruled out</span>`,
		`<span class="tag valid">satisfied</span>`, // read committed
		`href="#la-G-nonadjacent"`,
		`[r 1 [1]] [r 2 []]`,
		`&lt;n2&amp;&gt;`,
	} {
		assert.Contains(t, html, want)
	}
	assert.NotContains(t, html, "<n2&>", "node names are escaped")
	svgs := regexp.MustCompile(`(?s)<svg.*?</svg>`).FindAllString(html, -1)
	require.Len(t, svgs, 1, "one drawing per cycle")
	// The drawing is well-formed XML with a node per transaction and an
	// arrow per step, two of them read-write.
	d := xml.NewDecoder(strings.NewReader(svgs[0]))
	counts := map[string]int{}
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
	assert.Equal(t, 4, counts["circle"])
	assert.Equal(t, 4, counts["path"]-5, "4 arrows besides the 5 arrowheads")
	assert.Equal(t, 2, strings.Count(svgs[0], `stroke="#d62728"`), "two rw arrows")
	for _, l := range []string{"T1", "T4", "rw key 1", "wr key 2"} {
		assert.Contains(t, svgs[0], l)
	}
}

// The report shows the list-append check among the others.
func TestReportShowsListAppend(t *testing.T) {
	r := longFork()
	in := &Input{Result: &checker.Result{Schema: checker.ResultSchema, Verdict: checker.Invalid,
		Checks: []checker.Check{{Name: checker.NameListAppend, Verdict: checker.Invalid, Summary: r.Summary, ListAppend: r}}}}
	b, err := HTML(in)
	require.NoError(t, err)
	assert.Contains(t, string(b), `id="check-list-append"`)
	assert.Contains(t, string(b), `<figure class="cycle"><svg`)
}
