package elle

import (
	"sort"

	"github.com/strongcheck/strongcheck/results"
)

// roleAt is one observation: from time t on, node had role.
type roleAt struct {
	t    int64
	role string
}

// roles is each node's role over time, as the nemesis recorded it (every
// completed nemesis step lists the nodes' roles; a failover step names the
// new primary). Before the first record, the node of the first committed
// transaction that appended is the primary and the others are standbys.
type roles struct {
	byNode  map[string][]roleAt
	first   string // primary before any record
	primary string // the last primary recorded
}

func buildRoles(ops []results.Op, x *index) *roles {
	r := &roles{byNode: map[string][]roleAt{}}
	for i := range ops {
		op := &ops[i]
		if op.Process != results.NemesisProcess || op.Fault == nil || op.Type == results.Invoke {
			continue
		}
		for _, n := range op.Fault.Nodes {
			if n.Role != "" {
				r.byNode[n.Node] = append(r.byNode[n.Node], roleAt{op.Time, n.Role})
			}
			if n.Role == "primary" {
				r.primary = n.Node
			}
		}
		if p := op.Fault.Primary; p != "" {
			r.byNode[p] = append(r.byNode[p], roleAt{op.Time, "primary"})
			r.primary = p
		}
	}
	for i := range x.txns {
		t := &x.txns[i]
		if t.ok() && !t.final && writes(t.mops) {
			r.first = x.nodes[t.node]
			break
		}
	}
	for _, tl := range r.byNode {
		sort.SliceStable(tl, func(a, b int) bool { return tl[a].t < tl[b].t })
	}
	return r
}

func writes(mops []results.Mop) bool {
	for _, m := range mops {
		if !m.IsRead() {
			return true
		}
	}
	return false
}

// at is node's role at time t ("" when nothing is known).
func (r *roles) at(node string, t int64) string {
	tl := r.byNode[node]
	i := sort.Search(len(tl), func(i int) bool { return tl[i].t > t }) - 1
	if i >= 0 {
		return tl[i].role
	}
	switch {
	case r.first == "":
		return ""
	case node == r.first:
		return "primary"
	}
	return "standby"
}

// finalPrimary is the primary at the end: override if given, else the last
// one the nemesis recorded, else the first.
func (r *roles) finalPrimary(override string) string {
	switch {
	case override != "":
		return override
	case r.primary != "":
		return r.primary
	}
	return r.first
}
