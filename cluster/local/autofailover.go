package local

import (
	"context"
	"fmt"

	"github.com/strongcheck/strongcheck/cluster"
)

type autoFailover struct {
	m    *ManagedCluster
	tmpl template
}

func (a *autoFailover) describe() string { return "pg_auto_failover" }
func (a *autoFailover) extra() []string  { return []string{cluster.AutoFailoverMonitor} }
func (a *autoFailover) provision(ctx context.Context) error {
	return fmt.Errorf("not yet")
}
func (a *autoFailover) startNode(ctx context.Context, node string) error {
	return fmt.Errorf("not yet")
}
func (a *autoFailover) view(ctx context.Context) (cluster.ManagerView, error) {
	return cluster.ManagerView{}, fmt.Errorf("not yet")
}
func (a *autoFailover) healthy(ctx context.Context, v cluster.ManagerView) error {
	return fmt.Errorf("not yet")
}
