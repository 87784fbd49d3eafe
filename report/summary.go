package report

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/checker/elle"
)

// summaryRows caps each evidence table of summary.md.
const summaryRows = 5

// GitHubSummaryEnv names the file GitHub Actions renders as the step's
// summary.
const GitHubSummaryEnv = "GITHUB_STEP_SUMMARY"

// Summary renders summary.md: the verdict, one table of the checks, one
// table per checker with its counts and, for an invalid checker, its first
// few anomalies. It is short enough for a pull request comment.
func Summary(in *Input) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	v := in.Verdict()
	p("## %s strongcheck %s: %s\n\n", verdictEmoji(v), mdEscape(in.testName()), strings.ToUpper(verdictWord(v)))
	p("%s Exit code %d.\n\n", verdictLine(in), exitCode(in))
	if facts := summaryFacts(in); len(facts) > 0 {
		p("%s\n\n", strings.Join(facts, " · "))
	}
	if i := in.Info; i != nil && len(i.Command) > 0 {
		p("Reproduce: `%s`\n\n", strings.ReplaceAll(shellJoin(i.Command), "`", "'"))
	}
	for _, pr := range in.Problems {
		p("> **%s**: %s. Not shown: %s.\n\n", pr.File, mdEscape(pr.Err), pr.Missing)
	}
	if torn, line := in.torn(); torn {
		p("> The history ends in a torn line (line %d): the run was killed while writing it.\n\n", line)
	}
	res := in.Result
	if res == nil {
		return b.Bytes()
	}
	if len(res.Notes) > 0 {
		for _, n := range res.Notes {
			p("- %s\n", mdEscape(n))
		}
		p("\n")
	}
	summaryModels(&b, res)
	summaryAnomalies(&b, res)
	summaryChecks(&b, res)
	p("The full report with plots and every anomaly is `report.html` in the run folder.\n")
	return b.Bytes()
}

// summaryFacts are the run's facts in a line: its name, seed, backend,
// workloads, nemeses, length, synchronous_commit and history size.
func summaryFacts(in *Input) []string {
	var facts []string
	if in.Run.Dir != "" {
		facts = append(facts, "run `"+in.Run.Name()+"`")
	}
	if i := in.Info; i != nil {
		facts = append(facts, fmt.Sprintf("seed `%d`", i.Seed), "backend "+mdEscape(i.Backend))
		if len(i.Workloads) > 0 {
			facts = append(facts, "workloads "+mdEscape(strings.Join(i.Workloads, ", ")))
		}
		if len(i.Nemeses) > 0 {
			facts = append(facts, "nemeses "+mdEscape(strings.Join(i.Nemeses, ", ")))
		}
		if i.TimeLimitNS > 0 {
			facts = append(facts, fmtDur(i.TimeLimitNS))
		}
		if i.ExtendedNS > 0 {
			facts = append(facts, fmtDur(i.ExtendedNS)+" past it to finish the planned faults")
		}
		if c := i.Settings["synchronous_commit"]; c != "" {
			facts = append(facts, "synchronous_commit="+mdEscape(c))
		}
	}
	if r := in.Result; r != nil {
		s := fmtNum(int64(r.Ops)) + " history entries"
		if r.Torn {
			s += " (torn at the end)"
		}
		facts = append(facts, s)
	}
	return facts
}

// summaryModels is the table of the models, the run's own in bold.
func summaryModels(b *bytes.Buffer, res *checker.Result) {
	if len(res.Models) == 0 {
		return
	}
	b.WriteString("| model | verdict | what the history shows |\n|---|---|---|\n")
	for _, m := range res.Models {
		name := m.Model
		if m.Model == res.Model {
			name = "**" + name + "** (this run's)"
		}
		fmt.Fprintf(b, "| %s | %s %s | %s |\n", name, verdictEmoji(m.Verdict), m.Verdict, mdCell(m.Summary))
	}
	b.WriteString("\n")
}

// summaryAnomalies is the table of the named anomalies and the first
// example of each.
func summaryAnomalies(b *bytes.Buffer, res *checker.Result) {
	if len(res.Anomalies) == 0 {
		return
	}
	b.WriteString("| anomaly | count | PostgreSQL | explanation |\n|---|---|---|---|\n")
	for _, a := range res.Anomalies {
		doc := "not documented: a finding"
		if a.Documented {
			doc = "documented"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", a.Kind, fmtNum(int64(a.Count)), doc, mdCell(a.Explanation))
	}
	b.WriteString("\n")
	for _, a := range res.Anomalies {
		if len(a.Examples) > 0 {
			fmt.Fprintf(b, "**%s**: %s\n\n", a.Kind, mdEscape(a.Examples[0].Text))
		}
	}
}

// summaryChecks is the table of the checks, then each check's own section.
func summaryChecks(b *bytes.Buffer, res *checker.Result) {
	b.WriteString("| check | verdict | summary |\n|---|---|---|\n")
	for _, c := range res.Checks {
		s := c.Summary
		if c.Error != "" {
			s += " Could not decide: " + c.Error
		}
		fmt.Fprintf(b, "| %s | %s %s | %s |\n", c.Name, verdictEmoji(c.Verdict), c.Verdict, mdCell(s))
	}
	if len(res.Checks) == 0 {
		fmt.Fprintf(b, "| — | %s unknown | no check ran |\n", verdictEmoji(checker.Unknown))
	}
	b.WriteString("\n")
	for _, c := range res.Checks {
		summaryCheck(b, c)
	}
}

// md writes summary.md's markdown: lines, capped tables, evidence rows.
type md struct{ b *bytes.Buffer }

func (m *md) p(format string, args ...any) { fmt.Fprintf(m.b, format, args...) }

func (m *md) table(head []string, rows [][]string) {
	m.p("| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, x := range r {
			cells[i] = mdCell(x)
		}
		m.p("| %s |\n", strings.Join(cells, " | "))
	}
	m.p("\n")
}

func (m *md) refs(title string, rs []checker.OpRef, total int) {
	if len(rs) == 0 {
		return
	}
	m.p("%s (%s):\n\n", title, shown(len(rs), total))
	var rows [][]string
	for _, r := range rs[:min(len(rs), summaryRows)] {
		rows = append(rows, []string{fmt.Sprint(r.Invoke), r.F, r.Key, derefStr(r.Value), r.Node, r.Type, fmtSecs(r.InvokeNS), fmtSince(r), r.Warning})
	}
	m.table([]string{"op", "f", "key", "value", "node", "outcome", "invoked", "since fault", "warning"}, rows)
}

// summaryCheck writes one check's section: its counts and first evidence.
func summaryCheck(b *bytes.Buffer, c checker.Check) {
	m := &md{b}
	m.p("### %s %s\n\n", verdictEmoji(c.Verdict), c.Name)
	switch {
	case c.Linearizable != nil:
		m.linearizable(c.Linearizable)
	case c.RPO != nil:
		m.rpo(c.RPO)
	case c.StaleRead != nil:
		m.staleRead(c.StaleRead)
	case c.Bank != nil:
		m.bank(c.Bank)
	case c.ListAppend != nil:
		m.listAppend(c.ListAppend)
	case c.Availability != nil:
		m.availability(c.Availability)
	}
}

func (m *md) linearizable(l *checker.LinearizableResult) {
	m.table([]string{"keys", "operations", "pruned", "bad keys", "timed out"},
		[][]string{{fmt.Sprint(l.Keys), fmtNum(int64(l.Ops)), fmt.Sprint(l.Pruned), listOrNone(l.BadKeys), listOrNone(l.TimedOut)}})
	keys := make([]string, 0, len(l.Evidence))
	for k := range l.Evidence {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys[:min(len(keys), 2)] {
		m.refs("Key `"+k+"`: operations that could not be placed", l.Evidence[k], len(l.Evidence[k]))
	}
}

func (m *md) rpo(r *checker.RPOResult) {
	m.table([]string{"acknowledged", "lost", "lost with warning", "acked with warning", "recovered info", "unexpected", "vanished", "divergent"},
		[][]string{{fmtNum(int64(r.Acknowledged)), fmtNum(int64(fullCount(r.LostCount, len(r.Lost)))), fmt.Sprint(len(r.LostWithWarning)), fmt.Sprint(r.AckedWithWarning), fmt.Sprint(r.Recovered),
			fmtNum(int64(fullCount(r.UnexpectedCount, len(r.Unexpected)))), fmtNum(int64(fullCount(r.VanishedCount, len(r.Vanished)))), listOrNone(r.Divergent)}})
	m.refs("Lost writes", r.Lost, fullCount(r.LostCount, len(r.Lost)))
	m.refs("Reads of values no write produced", r.Unexpected, fullCount(r.UnexpectedCount, len(r.Unexpected)))
}

func (m *md) staleRead(s *checker.StaleReadResult) {
	nodes := make([]string, 0, len(s.ByNode))
	for n := range s.ByNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	var rows [][]string
	for _, n := range nodes {
		rows = append(rows, []string{n, fmtNum(int64(s.ByNode[n])), fmtNum(int64(s.StaleByNode[n]))})
	}
	rows = append(rows, []string{"**all**", fmtNum(int64(s.Reads)), fmtNum(int64(s.StaleCount))})
	m.table([]string{"node", "reads", "stale"}, rows)
	if s.StaleCount > 0 {
		m.p("Stale by up to %s (median %s).\n\n", fmtDur(s.MaxStaleNS), fmtDur(s.P50StaleNS))
		rows = nil
		for _, st := range s.Stale[:min(len(s.Stale), summaryRows)] {
			rows = append(rows, []string{fmt.Sprint(st.Read.Invoke), st.Read.Node, st.Read.Key, derefStr(st.Read.Value), derefStr(st.Newer.Value), fmtSecs(st.Newer.CompleteNS), fmtDur(st.StaleNS), fmtSince(st.Read)})
		}
		m.p("Stale reads (%s):\n\n", shown(len(rows), s.StaleCount))
		m.table([]string{"read", "node", "key", "read value", "newer acked value", "acked at", "read began after ack by", "since fault"}, rows)
	}
}

func (m *md) bank(k *checker.BankResult) {
	m.table([]string{"accounts", "total", "reads", "wrong totals", "ok transfers", "lost transfers"},
		[][]string{{fmt.Sprint(k.Accounts), fmtNum(k.Total), fmtNum(int64(k.Reads)), fmtNum(int64(k.BadReadCount)), fmtNum(int64(k.Transfers)), fmt.Sprint(len(k.LostTransfers))}})
	if len(k.BadReads) > 0 {
		var rows [][]string
		for _, bt := range k.BadReads[:min(len(k.BadReads), summaryRows)] {
			rows = append(rows, []string{fmt.Sprint(bt.Read.Invoke), bt.Read.Node, fmtSecs(bt.Read.InvokeNS), fmtNum(bt.Sum), fmtSince(bt.Read)})
		}
		m.p("Reads with a wrong total (%s):\n\n", shown(len(rows), k.BadReadCount))
		m.table([]string{"read", "node", "invoked", "sum", "since fault"}, rows)
	}
	m.refs("Lost transfers", k.LostTransfers, len(k.LostTransfers))
	if len(k.FinalBalances) > 0 {
		m.p("Final balances on the primary %s differ from the initial ones plus the surviving transfers %s.\n\n", fmtInts(k.FinalBalances), fmtInts(k.ExpectedBalances))
	}
}

func (m *md) availability(a *checker.AvailabilityResult) {
	rows := [][]string{
		{"all", fmtNum(int64(a.All.OK)), fmtNum(int64(a.All.Fail)), fmtNum(int64(a.All.Info)), fmtDur(a.All.P50), fmtDur(a.All.P99)},
		{"outside faults", fmtNum(int64(a.Outside.OK)), fmtNum(int64(a.Outside.Fail)), fmtNum(int64(a.Outside.Info)), fmtDur(a.Outside.P50), fmtDur(a.Outside.P99)},
	}
	for _, w := range a.Windows {
		rows = append(rows, []string{fmt.Sprintf("#%d %s %s", w.ID, w.Kind, strings.Join(w.Targets, ",")), fmtNum(int64(w.Ops.OK)), fmtNum(int64(w.Ops.Fail)), fmtNum(int64(w.Ops.Info)), fmtDur(w.Ops.P50), fmtDur(w.Ops.P99)})
	}
	m.table([]string{"operations", "ok", "fail", "info", "p50", "p99"}, rows)
	if len(a.Failovers) > 0 {
		rows = nil
		for _, f := range a.Failovers {
			promo, first := "never", "never"
			if f.PromotedNS >= 0 {
				promo = fmtDur(f.ToPromotionNS)
			}
			if f.FirstWriteNS >= 0 {
				first = fmtDur(f.ToFirstWriteNS)
			}
			rows = append(rows, []string{fmt.Sprint(f.FaultID), f.Old + " → " + f.New, promo, first})
		}
		m.table([]string{"fault", "failover", "to promotion", "RTO (to first write)"}, rows)
	}
}

// listAppend writes the list-append check's counts, the models the
// history satisfies and rules out, and its first cases.
func (m *md) listAppend(r *elle.Result) {
	final := r.FinalNode
	if final == "" {
		final = "none (lost appends not judged)"
	}
	m.table([]string{"judged as", "transactions", "ok", "info", "fail", "keys", "final reads from"},
		[][]string{{r.Model, fmtNum(int64(r.Txns)), fmtNum(int64(r.OK)), fmtNum(int64(r.Info)), fmtNum(int64(r.Fail)), fmtNum(int64(r.Keys)), final}})
	var rows [][]string
	for _, x := range r.Satisfies {
		rows = append(rows, []string{x, "satisfied", ""})
	}
	for _, ro := range r.RulesOut {
		var by []string
		for _, kc := range ro.By {
			by = append(by, fmt.Sprintf("%d %s", kc.Count, kc.Kind))
		}
		rows = append(rows, []string{ro.Model, "ruled out", strings.Join(by, ", ")})
	}
	for _, x := range r.Undecided {
		rows = append(rows, []string{x, "undecided", "a search stopped at its budget"})
	}
	m.table([]string{"model", "history", "by"}, rows)
	rows = nil
	for _, a := range r.Anomalies {
		first := ""
		if len(a.Cases) > 0 {
			first = a.Cases[0].Text
		}
		count := fmtNum(int64(a.Count))
		if a.AtLeast {
			count = "≥ " + count
		}
		rows = append(rows, []string{string(a.Kind), count, fmt.Sprint(a.Standby), first})
	}
	if len(rows) > 0 {
		m.table([]string{"anomaly", "count", "with a standby's transaction", "first case"}, rows)
	}
	for _, n := range r.Notes {
		m.p("- %s\n", mdEscape(n))
	}
	if len(r.Notes) > 0 {
		m.p("\n")
	}
}

func shown(n, total int) string {
	if n >= total {
		return fmt.Sprintf("%d", total)
	}
	return fmt.Sprintf("first %d of %d", n, total)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func verdictEmoji(v checker.Verdict) string {
	switch v {
	case checker.Valid:
		return "✅"
	case checker.Invalid:
		return "❌"
	case checker.Unknown:
		return "⚠️"
	}
	return "⛔"
}

var mdReplacer = strings.NewReplacer("\\", "\\\\", "|", "\\|", "<", "&lt;", "*", "\\*", "_", "\\_", "`", "\\`", "\r", " ", "\n", " ")

// mdEscape makes s plain text in markdown (and in a table cell).
func mdEscape(s string) string { return mdReplacer.Replace(s) }

// mdCell is a table cell: plain text, except values already marked up bold.
func mdCell(s string) string {
	if strings.HasPrefix(s, "**") && strings.HasSuffix(s, "**") && len(s) > 4 {
		return "**" + mdEscape(s[2:len(s)-2]) + "**"
	}
	return mdEscape(s)
}

// AppendGitHubSummary appends the summary.md at summaryPath to the file
// named by $GITHUB_STEP_SUMMARY, when that variable is set; otherwise it does
// nothing. The harness calls it once per run.
func AppendGitHubSummary(summaryPath string) error {
	dst := os.Getenv(GitHubSummaryEnv)
	if dst == "" {
		return nil
	}
	b, err := os.ReadFile(summaryPath)
	if err != nil {
		return fmt.Errorf("github summary: %w", err)
	}
	f, err := os.OpenFile(dst, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("github summary: %w", err)
	}
	if !bytes.HasSuffix(b, []byte("\n")) {
		b = append(b, '\n')
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("github summary: %w", err)
	}
	return nil
}
