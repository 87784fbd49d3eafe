package checker

import (
	"sort"

	"github.com/strongcheck/strongcheck/results"
)

// finalRead is one ok final read of the settle step.
type finalRead struct {
	s  step
	op *results.Op // the completion, which carries the values
}

// finalState is every final read of one workload, by node.
type finalState map[string][]finalRead

// finals collects the ok final reads by workload and node.
func (h *history) finals() map[string]finalState {
	out := map[string]finalState{}
	for st := range h.harnessSteps() {
		inv := &h.special[st.inv]
		if inv.F != results.FFinal || st.typ != results.OK {
			continue
		}
		comp := &h.special[st.comp]
		wl := inv.Workload
		if wl == "" {
			wl = comp.Workload
		}
		node := comp.Node
		if node == "" {
			node = inv.Node
		}
		if out[wl] == nil {
			out[wl] = finalState{}
		}
		out[wl][node] = append(out[wl][node], finalRead{s: st, op: comp})
	}
	return out
}

// finalPrimary names the node that was primary at the end of the history:
// the override if given, else the primary the role timeline ends with,
// else the latest primary the nemesis recorded (a failover step's Primary
// or a node state with role primary), else the node of the last
// acknowledged client write (writes go to the primary).
func (h *history) finalPrimary(override string) string {
	if override != "" {
		return override
	}
	if p := h.roleTimeline().primaryAt(h.end); p != "" {
		return p
	}
	for i := len(h.special) - 1; i >= 0; i-- {
		op := &h.special[i]
		if op.Process == results.NemesisProcess && op.Fault != nil {
			if op.Fault.Primary != "" {
				return op.Fault.Primary
			}
			for _, n := range op.Fault.Nodes {
				if n.Role == "primary" {
					return n.Node
				}
			}
		}
	}
	for i := len(h.clients) - 1; i >= 0; i-- {
		if c := &h.clients[i]; c.typ == tOK && c.write() && h.nodeName(c) != "" {
			return h.nodeName(c)
		}
	}
	return ""
}

// pickFinal chooses the final reads that stand for the cluster's final
// state: those of the primary, or, if the primary has none, of the only
// node that has some. It returns "" when it cannot choose.
func pickFinal(fs finalState, primary string) string {
	if _, ok := fs[primary]; ok {
		return primary
	}
	if len(fs) == 1 {
		for n := range fs {
			return n
		}
	}
	return ""
}

func sortedNodes(fs finalState) []string {
	nodes := make([]string, 0, len(fs))
	for n := range fs {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	return nodes
}
