package harness

import (
	"maps"

	"github.com/strongcheck/strongcheck/cluster"
)

// recordDiscovery puts what a backend attached to a cluster it did not
// build found (cluster.Discovered) in test.json: the settings as the
// primary runs them replace the spec's, and the topology goes in the extra
// fields (setup's saveInfo writes them). Other backends are left as they
// are.
func (r *runner) recordDiscovery(c cluster.Cluster) {
	d, ok := c.(cluster.Discovered)
	if !ok {
		return
	}
	settings, topo := d.Discovery()
	r.info.Settings = maps.Clone(settings)
	r.info.Extra["topology"] = topo
}

// discoveryDetail is the discovered topology for the history's topology
// entry ("" for a backend that built its cluster).
func (r *runner) discoveryDetail() string {
	if d, ok := r.c.(cluster.Discovered); ok {
		_, topo := d.Discovery()
		return "discovered: " + topo
	}
	return ""
}
