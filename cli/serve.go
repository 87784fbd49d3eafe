package cli

import (
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/strongcheck/strongcheck/report"
	"github.com/strongcheck/strongcheck/results"
)

func newServeCmd(stdout, stderr io.Writer) *cobra.Command {
	var addr, store string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "List the store's runs in a browser (newest first, with verdicts and reports)",
		Long: `Serve the store over HTTP: the list of runs at /, and the files each run publishes
(report.html, summary.md, junit.xml, results.json, history.jsonl, lag.jsonl, test.json,
the porcupine visualizations and logs/<node>.log). Nothing else is answered: no folder
listings, no cluster folder. It listens on 127.0.0.1 unless --addr says otherwise.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return usageErr("--addr %s: %w", addr, err)
			}
			fmt.Fprintf(stdout, "serving %s on http://%s/\n", store, ln.Addr())
			srv := report.NewServer(results.Store{Root: store})
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
