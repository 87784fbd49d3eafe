// Command strongcheck tests whether a PostgreSQL cluster with synchronous
// standbys keeps its promise: acknowledged writes survive every promotion
// and are readable from the standbys. See README.md.
package main

import (
	"os"

	"github.com/strongcheck/strongcheck/cli"
)

func main() {
	os.Exit(cli.Run(os.Args, os.Stdout, os.Stderr))
}
