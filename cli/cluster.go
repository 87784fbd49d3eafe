package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strongcheck/strongcheck/backends"
	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/cluster/k8s"
	"github.com/strongcheck/strongcheck/cluster/local"
)

// defaultClusterDir is `cluster`'s --dir: outside the default store, so
// that `serve` never lists a hand-made cluster as a run.
const defaultClusterDir = "./strongcheck-cluster"

func newClusterCmd(stdout, stderr io.Writer) *cobra.Command {
	var dir, subnet, nodes string
	var pgConf []string
	var showPasswords bool
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Bring a local cluster up by hand, show it, take it down",
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", defaultClusterDir, "the cluster's folder (logs and state; data and passwords live outside it)")
	up := &cobra.Command{
		Use:   "up",
		Short: "Start a three-node cluster and leave it running",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := backends.CheckSubnet(subnet); err != nil {
				return err
			}
			spec := cluster.Spec{Settings: cluster.Settings{}}
			for _, n := range strings.Split(nodes, ",") {
				spec.Nodes = append(spec.Nodes, strings.TrimSpace(n))
			}
			for _, kv := range pgConf {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return usageErr("--pg-conf %q: want key=value", kv)
				}
				spec.Settings[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
			c, err := local.Up(cmd.Context(), local.Options{Dir: dir, Subnet: subnet, Spec: spec, Detached: true,
				Logf: func(f string, a ...any) { fmt.Fprintf(stderr, f+"\n", a...) }})
			if err != nil {
				return err
			}
			if err := c.Detach(); err != nil {
				return err
			}
			return printStatus(cmd.Context(), stdout, c, showPasswords)
		},
	}
	up.Flags().StringVar(&subnet, "subnet", local.DefaultSubnet, "IPv4 subnet of the cluster's bridge (auto: a free 10.213.X.0/24)")
	up.Flags().StringVar(&nodes, "nodes", strings.Join(cluster.DefaultNodes, ","), "node names, the first is the primary")
	up.Flags().StringArrayVar(&pgConf, "pg-conf", nil, "postgresql.conf setting for every node, key=value (repeatable)")
	up.Flags().BoolVar(&showPasswords, "show-passwords", false, "print connection strings with their passwords")
	status := &cobra.Command{
		Use:   "status",
		Short: "Show roles, LSNs, replication and connection strings",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := local.Attach(dir)
			if err != nil {
				return err
			}
			return printStatus(cmd.Context(), stdout, c, showPasswords)
		},
	}
	status.Flags().BoolVar(&showPasswords, "show-passwords", false, "print connection strings with their passwords")
	var backend string
	var kopts k8s.Options
	var allNamespaces bool
	down := &cobra.Command{
		Use:   "down",
		Short: "Stop the cluster and remove its servers, namespaces and data (logs stay)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if backend == "k8s" {
				removed, err := k8s.Down(cmd.Context(), kopts, allNamespaces)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "removed %d strongcheck object(s): %s\n", len(removed), strings.Join(removed, ", "))
				return nil
			}
			if backend != "local" {
				return usageErr("--backend %q: want local or k8s", backend)
			}
			if err := local.Preflight(); err != nil {
				return err
			}
			if err := local.Down(cmd.Context(), dir); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "cluster in %s is down\n", dir)
			return nil
		},
	}
	down.Flags().StringVar(&backend, "backend", "local", "local, or k8s: delete everything labelled as strongcheck's (also after a crash)")
	down.Flags().BoolVar(&allNamespaces, "all-namespaces", false, "k8s: look in every namespace")
	kopts.AddFlags(down.Flags())
	cmd.AddCommand(up, status, down)
	return cmd
}

func printStatus(ctx context.Context, w io.Writer, c *local.Cluster, showPasswords bool) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "NODE\tADDRESS\tROLE\tTIMELINE\tLSN\tCONNECT (user; admin with user=postgres)\n")
	for _, s := range cluster.NodeStates(ctx, c) {
		lsn := s.CurrentLSN
		if lsn == "" {
			lsn = s.ReplayLSN
		}
		dsn := c.ConnString(s.Node, false)
		if !showPasswords {
			dsn = cluster.Redact(dsn)
		}
		role := s.Role
		if s.Error != "" {
			role += " (" + firstLine(s.Error) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Node, c.Addr(s.Node), role, s.Timeline, lsn, dsn)
	}
	tw.Flush()
	if p, err := cluster.FindPrimary(ctx, c); err == nil {
		if rs, err := cluster.Replication(ctx, c, p); err == nil {
			fmt.Fprintf(w, "\nreplication on %s:\n", p)
			for _, r := range rs {
				fmt.Fprintf(w, "  %s: %s/%s flush %s replay %s\n", r.Name, r.State, r.SyncState, r.FlushLSN, r.ReplayLSN)
			}
		}
	}
	fmt.Fprintf(w, "\nlogs in %s/logs, data in %s\n", c.Dir(), c.DataDir())
	if !showPasswords {
		fmt.Fprintf(w, "passwords masked; --show-passwords prints them (they are in %s, root only)\n", c.SecretsFile())
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
