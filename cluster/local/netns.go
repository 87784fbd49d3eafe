package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
)

// network is the bridge, namespaces and veths of one cluster. The harness
// sits in the root namespace at the bridge address (.1) and reaches every
// node; the nodes reach each other and the bridge, and nothing else (no
// default route).
type network struct {
	id     string
	subnet *net.IPNet
	bridge string
	nsOf   map[string]string // node -> namespace
	vethOf map[string]string // node -> host-side veth
	ipOf   map[string]string // node -> address
	hostIP string
}

func newNetwork(id string, subnet *net.IPNet, nodes []string) *network {
	n := &network{id: id, subnet: subnet, bridge: "sc" + id + "br",
		nsOf: map[string]string{}, vethOf: map[string]string{}, ipOf: map[string]string{}}
	base := subnet.IP.To4()
	n.hostIP = ipAt(base, 1)
	for i, node := range nodes {
		n.nsOf[node] = "sc" + id + "-" + node
		n.vethOf[node] = fmt.Sprintf("sc%sv%d", id, i)
		n.ipOf[node] = ipAt(base, 11+i)
	}
	return n
}

func ipAt(base net.IP, host int) string {
	ip := make(net.IP, 4)
	copy(ip, base)
	ip[3] = byte(host)
	return ip.String()
}

func (n *network) namespaces() []string {
	var out []string
	for _, ns := range n.nsOf {
		out = append(out, ns)
	}
	return out
}

func (n *network) veths() []string {
	var out []string
	for _, v := range n.vethOf {
		out = append(out, v)
	}
	return out
}

// runIP runs one `ip -batch` script (in namespace ns when not empty).
func runIP(ctx context.Context, ns string, script string) error {
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// up creates the bridge, namespaces and veths.
func (n *network) up(ctx context.Context, nodes []string) error {
	ones, _ := n.subnet.Mask.Size()
	var root strings.Builder
	fmt.Fprintf(&root, "link add %s type bridge\naddr add %s/%d dev %s\nlink set %s up\n", n.bridge, n.hostIP, ones, n.bridge, n.bridge)
	for _, node := range nodes {
		fmt.Fprintf(&root, "netns add %s\nlink add %s type veth peer name eth0 netns %s\nlink set %s master %s\nlink set %s up\n",
			n.nsOf[node], n.vethOf[node], n.nsOf[node], n.vethOf[node], n.bridge, n.vethOf[node])
	}
	if err := runIP(ctx, "", root.String()); err != nil {
		return err
	}
	for _, node := range nodes {
		script := fmt.Sprintf("addr add %s/%d dev eth0\nlink set eth0 up\nlink set lo up\n", n.ipOf[node], ones)
		if err := runIP(ctx, n.nsOf[node], script); err != nil {
			return err
		}
	}
	return nil
}

// deleteNetwork removes namespaces (their nft tables and veth ends go with
// them), host veths and the bridge; missing ones are fine.
func deleteNetwork(namespaces, veths []string, bridge string) error {
	var errs []error
	for _, ns := range namespaces {
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			continue
		}
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", ns, err, bytes.TrimSpace(out)))
		}
	}
	for _, v := range veths {
		if linkExists(v) {
			_ = exec.Command("ip", "link", "del", v).Run() // may already be gone with its peer
		}
	}
	if bridge != "" && linkExists(bridge) {
		if out, err := exec.Command("ip", "link", "del", bridge).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip link del %s: %v: %s", bridge, err, bytes.TrimSpace(out)))
		}
	}
	return errors.Join(errs...)
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// subnetInUse reports an address of this machine's root namespace inside
// subnet (another network already routes it).
func subnetInUse(subnet *net.IPNet) (string, bool) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", false
	}
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.To4() == nil {
				continue
			}
			if subnet.Contains(ipn.IP) || ipn.Contains(subnet.IP) {
				return fmt.Sprintf("%s on %s", ipn, ifc.Name), true
			}
		}
	}
	return "", false
}

// ParseSubnet accepts an IPv4 /24 (or larger host part) like 10.213.0.0/24.
func ParseSubnet(s string) (*net.IPNet, error) {
	_, ipn, err := net.ParseCIDR(s)
	if err != nil {
		return nil, fmt.Errorf("subnet %q: %w", s, err)
	}
	ones, bits := ipn.Mask.Size()
	if ipn.IP.To4() == nil || bits != 32 || ones > 24 || ones < 8 {
		return nil, fmt.Errorf("subnet %q: want an IPv4 network of /8 to /24", s)
	}
	return ipn, nil
}

// nft runs an nft script inside namespace ns.
func nft(ctx context.Context, ns, script string) error {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft in %s: %w: %s", ns, err, bytes.TrimSpace(out))
	}
	return nil
}

const nftTable = "strongcheck"

// partition installs, in each node's namespace, a table dropping traffic to
// and from the addresses it must not reach; nodes with no peer to cut get no
// table. An earlier partition is replaced.
func (n *network) partition(ctx context.Context, cut map[string][]string) error {
	for node, ns := range n.nsOf {
		var rules strings.Builder
		for _, peer := range cut[node] {
			ip := n.ipOf[peer]
			fmt.Fprintf(&rules, "    ip saddr %s drop\n", ip)
		}
		var out strings.Builder
		for _, peer := range cut[node] {
			fmt.Fprintf(&out, "    ip daddr %s drop\n", n.ipOf[peer])
		}
		script := fmt.Sprintf("table inet %s\ndelete table inet %s\n", nftTable, nftTable)
		if len(cut[node]) > 0 {
			script += fmt.Sprintf("table inet %s {\n  chain in {\n    type filter hook input priority 0; policy accept;\n%s  }\n  chain out {\n    type filter hook output priority 0; policy accept;\n%s  }\n}\n",
				nftTable, rules.String(), out.String())
		}
		if err := nft(ctx, ns, script); err != nil {
			return err
		}
	}
	return nil
}

// heal deletes every partition table.
func (n *network) heal(ctx context.Context) error {
	var errs []error
	for _, ns := range n.nsOf {
		if err := nft(ctx, ns, fmt.Sprintf("table inet %s\ndelete table inet %s\n", nftTable, nftTable)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// shape limits, in every node's namespace, the bandwidth of traffic to the
// other nodes to rate (htb with a u32 filter per peer address); traffic to
// the harness at the bridge address is untouched. A port other than 0
// limits only the traffic from or to that port (PostgreSQL's), so that
// other services on the nodes (a manager's etcd members) are not
// congested.
func (n *network) shape(ctx context.Context, rate string, port int) error {
	for node, ns := range n.nsOf {
		// Replace any earlier shaping; a missing qdisc is fine.
		_ = exec.CommandContext(ctx, "ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", "eth0", "root").Run()
		if rate == "" {
			continue
		}
		var b strings.Builder
		b.WriteString("qdisc add dev eth0 root handle 1: htb default 1 r2q 1000\n")
		b.WriteString("class add dev eth0 parent 1: classid 1:1 htb rate 10gbit\n")
		fmt.Fprintf(&b, "class add dev eth0 parent 1: classid 1:2 htb rate %s\n", rate)
		for peer, ip := range n.ipOf {
			switch {
			case peer == node:
			case port == 0:
				fmt.Fprintf(&b, "filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst %s/32 flowid 1:2\n", ip)
			default:
				for _, dir := range []string{"sport", "dport"} {
					fmt.Fprintf(&b, "filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst %s/32 match ip %s %d 0xffff flowid 1:2\n", ip, dir, port)
				}
			}
		}
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "tc", "-batch", "-")
		cmd.Stdin = strings.NewReader(b.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("tc in %s: %w: %s", ns, err, bytes.TrimSpace(out))
		}
	}
	return nil
}
