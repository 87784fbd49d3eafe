package checker

import (
	"fmt"
	"github.com/strongcheck/strongcheck/checker/elle"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/strongcheck/strongcheck/results"
)

// Kind names an anomaly: a pattern in the history that some consistency
// model forbids. Each kind is a first-class result (Anomaly) with its count,
// evidence and a sentence, and each model (Model) names the kinds it forbids.
type Kind string

// The anomalies the single-key checkers name. The transactional checker
// adds the cycle classes of Elle (G0, G1a, ...).
const (
	// KindStaleRead: a read returned a value older than a write that was
	// acknowledged before the read began.
	KindStaleRead Kind = "stale-read"
	// KindNewThenOld: a read saw a value, and a read that began after it
	// ended, on another node (or across a failover), saw an older one.
	KindNewThenOld Kind = "new-then-old"
	// KindNonMonotonic: two reads on the same node, the second begun after
	// the first ended and no failover between them, went back in time.
	KindNonMonotonic Kind = "non-monotonic-read"
	// KindVanished: a value that was read is not in the final state: the
	// cluster later lost it.
	KindVanished Kind = "vanished-read"
	// KindLostWrite: an acknowledged write is missing from the final state.
	KindLostWrite Kind = "lost-write"
	// KindLostWarned: a write acknowledged with "canceling wait for
	// synchronous replication" is missing from the final state.
	KindLostWarned Kind = "lost-write-after-cancelled-wait"
	// KindFailedPresent: a write recorded as fail (certainly did not
	// happen) whose effect was read or is in the final state.
	KindFailedPresent Kind = "failed-but-present"
	// KindUnwritten: a read returned a value no write produced.
	KindUnwritten Kind = "unwritten-value"
	// KindDivergent: after the run settled, a node's data differs from the
	// primary's.
	KindDivergent Kind = "divergent-final-state"
	// KindBankTotal: a bank read whose balances do not sum to the total,
	// or final balances that the logged transfers do not explain.
	KindBankTotal Kind = "bank-invariant"
	// KindNonLinearizable: porcupine found no legal order of the writes and
	// the primary's reads of a key, and no named anomaly explains it.
	KindNonLinearizable Kind = "non-linearizable"
	// KindNonLinearizableAll: no legal order of the writes and every
	// node's reads of a key, and no named anomaly explains it.
	KindNonLinearizableAll Kind = "non-linearizable-across-nodes"
)

// kindOrder is the order of the kinds in results and reports.
var kindOrder = []Kind{KindLostWrite, KindLostWarned, KindVanished, KindFailedPresent, KindUnwritten,
	KindDivergent, KindBankTotal, KindNonMonotonic, KindStaleRead, KindNewThenOld, KindNonLinearizable, KindNonLinearizableAll}

// kindRank orders kinds; unknown kinds (the transactional checker's) come
// after the known ones, by name.
func kindRank(k Kind) int {
	if i := slices.Index(kindOrder, k); i >= 0 {
		return i
	}
	return len(kindOrder)
}

// Anomaly is every instance of one kind that is (or is not) documented by
// PostgreSQL for the run's configuration; a kind with instances of both has
// two entries.
type Anomaly struct {
	Kind Kind `json:"kind"`
	// Documented says PostgreSQL documents this behaviour for the run's
	// effective configuration; Why says why (or why not) in a sentence
	// and Doc cites the page.
	Documented bool   `json:"documented"`
	Why        string `json:"why"`
	Doc        string `json:"doc,omitempty"`
	Count      int    `json:"count"`
	// ByNode and ByRole count the instances by the node of the anomalous
	// operation and that node's role at that moment.
	ByNode map[string]int `json:"by_node,omitempty"`
	ByRole map[string]int `json:"by_role,omitempty"`
	// ByWorkload counts the instances by the workload of the anomalous
	// operation, for kinds found in more than one (stale reads: register
	// reads, judged by the stale-read check, and set reads).
	ByWorkload map[string]int `json:"by_workload,omitempty"`
	// Explanation is one plain sentence with the counts.
	Explanation string `json:"explanation"`
	// MaxNS and P50NS are, for stale reads, how long after the newer
	// write's acknowledgement the stale reads began.
	MaxNS int64 `json:"max_ns,omitempty"`
	P50NS int64 `json:"p50_ns,omitempty"`
	// Examples are the first instances, in history order, with evidence.
	Examples []Example `json:"examples,omitempty"`
}

// Example is one instance of an anomaly with what a reader needs to
// believe it without the raw history.
type Example struct {
	// Text is one sentence about this instance.
	Text string `json:"text"`
	// Ops are the operations involved, the anomalous one first.
	Ops  []OpRef `json:"ops"`
	Key  string  `json:"key,omitempty"`
	Node string  `json:"node,omitempty"`
	Role string  `json:"role,omitempty"`
	// State is every node's role and LSNs as the nemesis recorded them
	// closest before the anomalous operation (nil when nothing was).
	State []NodeLSN `json:"state,omitempty"`
}

// maxExamples bounds the examples kept per anomaly.
const maxExamples = 20

// instance is one occurrence, before grouping.
type instance struct {
	kind       Kind
	doc        docVerdict
	node, role string
	key        string // the key or workload involved, for the linearizability explanation
	workload   string // the anomalous operation's, where a kind is found in several (Anomaly.ByWorkload)
	t          int64  // time of the anomalous operation
	durNS      int64  // stale reads: staleness
	example    func() Example
}

// anomalySet groups instances by kind and documentation as they are found.
type anomalySet struct {
	h       *history
	entries map[anomalyKey]*anomalyAcc
	// byKey is which kinds were found on each key: all of them explain a
	// key's reads across nodes, those of the primary (and lost or
	// vanished data) its primary-only history.
	byKey map[string]*keyKinds
}

type keyKinds struct{ primary, all map[Kind]bool }

// explainsPrimary says an instance of kind in role explains why the
// writes and the primary's reads of its key have no legal order.
func explainsPrimary(kind Kind, role string) bool {
	switch kind {
	case KindLostWrite, KindLostWarned, KindVanished, KindFailedPresent, KindUnwritten:
		return true
	}
	return role == rolePrimary
}

type anomalyKey struct {
	kind       Kind
	documented bool
}

type anomalyAcc struct {
	a    Anomaly
	durs []int64
	// times of the examples, to keep the earliest ones.
	times []int64
}

func newAnomalySet(h *history) *anomalySet {
	return &anomalySet{h: h, entries: map[anomalyKey]*anomalyAcc{}, byKey: map[string]*keyKinds{}}
}

// add records one instance; its example is built only while fewer than
// maxExamples are kept or it is earlier than one kept.
func (s *anomalySet) add(in instance) {
	k := anomalyKey{in.kind, in.doc.documented}
	acc := s.entries[k]
	if acc == nil {
		acc = &anomalyAcc{a: Anomaly{Kind: in.kind, Documented: in.doc.documented, Why: in.doc.why, Doc: in.doc.url,
			ByNode: map[string]int{}, ByRole: map[string]int{}}}
		s.entries[k] = acc
	}
	if in.key != "" {
		kk := s.byKey[in.key]
		if kk == nil {
			kk = &keyKinds{primary: map[Kind]bool{}, all: map[Kind]bool{}}
			s.byKey[in.key] = kk
		}
		kk.all[in.kind] = true
		if explainsPrimary(in.kind, in.role) {
			kk.primary[in.kind] = true
		}
	}
	a := &acc.a
	a.Count++
	if in.node != "" {
		a.ByNode[in.node]++
	}
	if in.role != "" {
		a.ByRole[in.role]++
	}
	if in.workload != "" {
		if a.ByWorkload == nil {
			a.ByWorkload = map[string]int{}
		}
		a.ByWorkload[in.workload]++
	}
	if in.durNS > 0 {
		acc.durs = append(acc.durs, in.durNS)
	}
	if in.example == nil {
		return
	}
	if len(a.Examples) < maxExamples {
		a.Examples = append(a.Examples, s.withState(in))
		acc.times = append(acc.times, in.t)
		return
	}
	// Keep the earliest: replace the latest kept when this one is earlier.
	j := 0
	for i, t := range acc.times {
		if t > acc.times[j] {
			j = i
		}
	}
	if in.t < acc.times[j] {
		a.Examples[j], acc.times[j] = s.withState(in), in.t
	}
}

// withState builds the instance's example with the node states recorded
// closest before it.
func (s *anomalySet) withState(in instance) Example {
	ex := in.example()
	if ex.Node == "" {
		ex.Node = in.node
	}
	if ex.Role == "" {
		ex.Role = in.role
	}
	ex.State = s.h.stateBefore(in.t)
	return ex
}

// list returns the anomalies in a fixed order, with their explanations.
func (s *anomalySet) list() []Anomaly {
	out := make([]Anomaly, 0, len(s.entries))
	for _, acc := range s.entries {
		a := acc.a
		if n := len(acc.durs); n > 0 {
			slices.Sort(acc.durs)
			a.MaxNS, a.P50NS = acc.durs[n-1], acc.durs[n/2]
		}
		order := make([]int, len(a.Examples))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(x, y int) bool { return acc.times[order[x]] < acc.times[order[y]] })
		ex := make([]Example, len(order))
		for i, j := range order {
			ex[i] = a.Examples[j]
		}
		a.Examples = ex
		if len(a.ByNode) == 0 {
			a.ByNode = nil
		}
		if len(a.ByRole) == 0 {
			a.ByRole = nil
		}
		a.Explanation = explain(&a)
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := kindRank(out[i].Kind), kindRank(out[j].Kind)
		if ri != rj {
			return ri < rj
		}
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return !out[i].Documented && out[j].Documented
	})
	return out
}

// workloadsPhrase counts by workload in words, in a fixed order:
// "2 register reads, 1 set read"; "" when the instances come from one
// workload or none (the count then needs no breakdown).
func workloadsPhrase(by map[string]int, one, many string) string {
	if len(by) < 2 {
		return ""
	}
	var parts []string
	for _, w := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%d %s %s", by[w], w, plural(by[w], one, many)))
	}
	return strings.Join(parts, ", ")
}

// explain is an anomaly's sentence: what happened, how often, where.
func explain(a *Anomaly) string {
	where := ""
	if len(a.ByNode) > 0 {
		where = " (" + countByNode(a.ByNode)
		if len(a.ByRole) > 0 {
			where += "; " + rolesPhrase(a.ByRole)
		}
		where += ")"
	}
	n := a.Count
	switch a.Kind {
	case KindStaleRead:
		if by := workloadsPhrase(a.ByWorkload, "read", "reads"); by != "" {
			where = " (" + by + "; " + strings.TrimPrefix(where, " (")
			if len(a.ByNode) == 0 {
				where = " (" + by + ")"
			}
		}
		s := fmt.Sprintf("%d %s%s returned a value older than a write acknowledged before the read began", n, plural(n, "read", "reads"), where)
		if a.MaxNS > 0 {
			s += fmt.Sprintf(", stale by up to %s (median %s)", fmtNS(a.MaxNS), fmtNS(a.P50NS))
		}
		return s + "."
	case KindNewThenOld:
		return fmt.Sprintf("%d %s%s returned an older value than a read that had ended before they began: the nodes did not show the writes in one order.", n, plural(n, "read", "reads"), where)
	case KindNonMonotonic:
		return fmt.Sprintf("%d %s%s went back in time on the same node: an earlier read there had returned a newer value, with no failover in between.", n, plural(n, "read", "reads"), where)
	case KindVanished:
		return fmt.Sprintf("%d %s%s returned a value that later disappeared from the cluster: clients saw a write that was then lost.", n, plural(n, "read", "reads"), where)
	case KindLostWrite:
		return fmt.Sprintf("%d acknowledged %s %s missing from the final state: RPO = 0 broke.", n, plural(n, "write", "writes"), plural(n, "is", "are"))
	case KindLostWarned:
		return fmt.Sprintf("%d %s acknowledged with the warning \"canceling wait for synchronous replication\" %s missing from the final state: the wait for the standbys was cancelled and PostgreSQL reported success for a commit only the primary had.", n, plural(n, "write", "writes"), plural(n, "is", "are"))
	case KindFailedPresent:
		return fmt.Sprintf("%d %s recorded as failed (certainly not done) took effect after all: their values were read or are in the final state.", n, plural(n, "write", "writes"))
	case KindUnwritten:
		return fmt.Sprintf("%d %s%s returned values no client ever wrote: the data was corrupted or the history does not match the database.", n, plural(n, "read", "reads"), where)
	case KindDivergent:
		return fmt.Sprintf("After the run settled, %d %s held other data than the primary%s: such a node would lose or resurrect writes if promoted.", n, plural(n, "node", "nodes"), where)
	case KindBankTotal:
		return fmt.Sprintf("The bank's invariant broke %d %s: balances that do not sum to the total, or final balances the logged transfers do not explain.", n, plural(n, "time", "times"))
	case KindNonLinearizable:
		return fmt.Sprintf("%d %s no legal order of the writes and the primary's reads, and no named anomaly explains it: look at the operations porcupine could not place.", n, plural(n, "key has", "keys have"))
	case KindNonLinearizableAll:
		return fmt.Sprintf("%d %s no legal order of the writes and the reads of every node, beyond what the named anomalies explain.", n, plural(n, "key has", "keys have"))
	}
	if s := listAppendSentence(elle.Kind(a.Kind), n); s != "" {
		return s
	}
	return fmt.Sprintf("%d instances of %s%s.", n, a.Kind, where)
}

func rolesPhrase(m map[string]int) string {
	if len(m) == 1 {
		if m[rolePrimary] > 0 {
			return "all on the primary"
		}
		return "all on standbys"
	}
	var parts []string
	for _, r := range []string{rolePrimary, roleStandby} {
		if m[r] > 0 {
			where := "standbys"
			if r == rolePrimary {
				where = "the primary"
			}
			parts = append(parts, fmt.Sprintf("%d on %s", m[r], where))
		}
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// stateBefore is every node's state at the nemesis record closest before t
// (or the first after it when there is none before).
func (h *history) stateBefore(t int64) []NodeLSN {
	var best *results.Op
	for s := range h.nemesisSteps() {
		op := h.stepOp(s)
		if op.Fault == nil || len(op.Fault.Nodes) == 0 {
			continue
		}
		if op.Time <= t || best == nil {
			best = op
		}
		if op.Time > t {
			break
		}
	}
	if best == nil {
		return nil
	}
	return nodeLSNs(best.Fault)
}

// explainBadKeys splits the bad keys of a linearizability check into those
// the named anomalies found so far explain and the others, each of which
// is added to s as an anomaly of kind.
func (s *anomalySet) explainBadKeys(chk *Check, kind Kind, docOf func(key string) docVerdict) {
	l := chk.Linearizable
	if l == nil {
		return
	}
	for _, key := range l.BadKeys {
		var kinds map[Kind]bool
		if kk := s.byKey[key]; kk != nil {
			kinds = kk.all
			if l.Scope == scopePrimary {
				kinds = kk.primary
			}
		}
		if len(kinds) > 0 {
			if l.Explained == nil {
				l.Explained = map[string][]Kind{}
			}
			ks := make([]Kind, 0, len(kinds))
			for k := range kinds {
				ks = append(ks, k)
			}
			sort.Slice(ks, func(i, j int) bool { return kindRank(ks[i]) < kindRank(ks[j]) })
			l.Explained[key] = ks
			continue
		}
		l.Unexplained = append(l.Unexplained, key)
		ev := l.Evidence[key]
		var t int64
		node, role := "", ""
		if len(ev) > 0 {
			t, node = ev[0].InvokeNS, ev[0].Node
			role = ev[0].Role
		}
		s.add(instance{kind: kind, doc: docOf(key), node: node, role: role, t: t, key: key,
			example: func() Example {
				return Example{Key: key, Ops: ev, Text: fmt.Sprintf("porcupine found no legal order for %s; these are the last operation it could place and the first it could not", key)}
			}})
	}
	if len(l.BadKeys) > 0 {
		chk.Summary += fmt.Sprintf("; %d explained by named anomalies, %d unexplained", len(l.Explained), len(l.Unexplained))
	}
}
