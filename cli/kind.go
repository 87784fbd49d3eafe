package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/strongcheck/strongcheck/cluster/k8s"
)

func newKindCmd(stdout, stderr io.Writer) *cobra.Command {
	var k k8s.Kind
	cmd := &cobra.Command{
		Use:   "kind",
		Short: "Create or delete a kind cluster for `test --backend k8s` (needs Docker and kind)",
	}
	cmd.PersistentFlags().StringVar(&k.Name, "name", "", "kind cluster name (default "+k8s.DefaultKindCluster+")")
	cmd.PersistentFlags().StringVar(&k.NodeImage, "image", "", "kind node image (default: kind's)")
	cmd.PersistentFlags().StringVar(&k.Kubeconfig, "kubeconfig", "", "where kind writes credentials (default: kind's)")
	up := &cobra.Command{
		Use:  "up",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			k.Stdout, k.Stderr = stdout, stderr
			created, err := k.Up(cmd.Context())
			if err != nil {
				return err
			}
			if created {
				fmt.Fprintln(stdout, "kind cluster created")
			} else {
				fmt.Fprintln(stdout, "kind cluster already exists")
			}
			return nil
		},
	}
	down := &cobra.Command{
		Use:  "down",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			k.Stdout, k.Stderr = stdout, stderr
			return k.Down(cmd.Context())
		},
	}
	cmd.AddCommand(up, down)
	return cmd
}
