package cli

import (
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/results/report"
)

func newServeCmd(stdout, stderr io.Writer) *cobra.Command {
	var addr, store string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "List the store's runs in a browser (newest first, with verdicts and reports)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return usageErr("--addr %s: %v", addr, err)
			}
			fmt.Fprintf(stdout, "serving %s on http://%s/\n", store, ln.Addr())
			srv := &http.Server{Handler: report.Handler(results.Store{Root: store})}
			go func() {
				<-cmd.Context().Done()
				srv.Close()
			}()
			if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().StringVar(&store, "store", "./store", "store folder")
	return cmd
}
