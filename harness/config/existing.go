package config

import (
	"errors"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongcheck/strongcheck/cluster/existing"
	"github.com/strongcheck/strongcheck/harness"
	"github.com/strongcheck/strongcheck/internal/usererr"
	"github.com/strongcheck/strongcheck/nemesis"
)

// ExistingFlags are the flags of `--backend existing`: a cluster the user
// already runs, reached by connection strings.
type ExistingFlags struct {
	Nodes        []string
	NodesFile    string
	FaultCmds    []string
	CmdTimeout   time.Duration
	ClusterName  string
	AllowFaults  string
	AllowPromote bool
	KeepTables   bool
	DryRun       bool

	parsed   []existing.Node
	commands existing.Commands
}

func (e *ExistingFlags) addFlags(fl *pflag.FlagSet) {
	fl.StringArrayVar(&e.Nodes, "node", nil, "existing backend: a node, NAME=DSN[,app=APPLICATION_NAME][,admin=DSN] (repeatable; the DSN holds no password: see docs/existing.md)")
	fl.StringVar(&e.NodesFile, "nodes-file", "", "existing backend: a file of nodes, one NAME=DSN[,app=..][,admin=..] a line")
	fl.StringArrayVar(&e.FaultCmds, "fault-cmd", nil, "existing backend: your command for a fault, VERB=COMMAND (repeatable; verbs kill start stop pause resume partition heal rejoin; see --help)")
	fl.DurationVar(&e.CmdTimeout, "fault-cmd-timeout", 30*time.Second, "existing backend: time limit of one fault command (then its process group is killed and the step fails)")
	fl.StringVar(&e.ClusterName, "cluster-name", "", "existing backend: the cluster's name when its primary sets no cluster_name (must agree when it does)")
	fl.StringVar(&e.AllowFaults, "allow-faults", "", "existing backend: allow faults on the cluster of this name (the primary's cluster_name or --cluster-name)")
	fl.BoolVar(&e.AllowPromote, "allow-promote", false, "existing backend: let strongcheck promote (pg_promote) and re-point standbys (ALTER SYSTEM SET primary_conninfo) itself")
	fl.BoolVar(&e.KeepTables, "keep-tables", false, "existing backend: keep the run's schema strongcheck_<run> and its tables")
	fl.BoolVar(&e.DryRun, "dry-run", false, "existing backend: print every action the run would take and exit, writing nothing")
}

// existingUsage marks the existing backend's user errors as the user's.
func existingUsage(err error) error {
	if err != nil && errors.Is(err, existing.ErrUsage) && !usererr.Is(err) {
		return usererr.Wrap(err)
	}
	return err
}

// parseExisting reads the existing backend's nodes and commands; they
// replace --nodes, and --failover defaults to external (the cluster's own
// manager fails over).
func parseExisting(f *Flags, t *harness.Test) error {
	return existingUsage(parseExistingFlags(f, t))
}

func parseExistingFlags(f *Flags, t *harness.Test) error {
	e := &f.Existing
	if f.Backend != Existing {
		if len(e.Nodes) > 0 || e.NodesFile != "" || len(e.FaultCmds) > 0 || e.DryRun || e.AllowFaults != "" || e.AllowPromote {
			return usererr.New("--node, --nodes-file, --fault-cmd, --allow-faults, --allow-promote and --dry-run are for --backend existing")
		}
		return nil
	}
	e.parsed = nil
	if e.NodesFile != "" {
		ns, err := existing.ParseNodesFile(e.NodesFile)
		if err != nil {
			return err
		}
		e.parsed = ns
	}
	for _, s := range e.Nodes {
		n, err := existing.ParseNode(s)
		if err != nil {
			return err
		}
		e.parsed = append(e.parsed, n)
	}
	if err := existing.CheckNodes(e.parsed); err != nil {
		return err
	}
	e.commands = existing.Commands{}
	for _, s := range e.FaultCmds {
		if err := existing.ParseFaultCmd(e.commands, s); err != nil {
			return err
		}
	}
	if e.CmdTimeout <= 0 {
		return usererr.New("--fault-cmd-timeout %v: must be positive", e.CmdTimeout)
	}
	t.Spec.Nodes = nil
	for _, n := range e.parsed {
		t.Spec.Nodes = append(t.Spec.Nodes, n.Name)
	}
	if f.Failover == "" {
		f.Failover = nemesis.FailoverExternal
	}
	return nil
}

// checkExisting refuses, before anything starts, what the existing
// backend cannot do: faults without their commands, faults that would
// touch other sessions, link shaping, a manager of strongcheck's.
func checkExisting(f *Flags, t *harness.Test) error {
	switch {
	case f.LinkRate != "":
		return usererr.New("--link-rate: the existing backend cannot shape your links")
	case t.Spec.Manager.Managed():
		return usererr.New("--manager: with --backend existing your cluster's own manager runs it (--failover external)")
	case f.LeaveRunning:
		return usererr.New("--leave-db-running: your cluster keeps running anyway; --keep-tables keeps the run's tables")
	case len(t.Spec.Settings) > 0:
		return usererr.New("--pg-conf: the existing backend changes no setting of your cluster")
	}
	need, err := verbsNeeded(t.Faults, t.Sequence, f.Existing.AllowPromote)
	if err != nil {
		return err
	}
	if missing := f.Existing.commands.Missing(need...); len(missing) > 0 {
		return usererr.New("the planned faults (%s) need --fault-cmd %s (see --help for what each command must do), or run without faults: --nemesis none",
			plannedFaults(t), strings.Join(missing, "=..., --fault-cmd ")+"=...")
	}
	return nil
}

// FaultVerbs are the commands each fault kind runs on the existing
// backend, heals included.
var FaultVerbs = map[string][]string{
	nemesis.KillPrimary:       {existing.VerbKill, existing.VerbStart},
	nemesis.KillStandby:       {existing.VerbKill, existing.VerbStart},
	nemesis.Restart:           {existing.VerbStop, existing.VerbStart},
	nemesis.Pause:             {existing.VerbPause, existing.VerbResume},
	nemesis.Partition:         {existing.VerbPartition, existing.VerbHeal},
	nemesis.CrashWhileWaiting: {existing.VerbPartition, existing.VerbHeal, existing.VerbKill, existing.VerbStart},
	nemesis.CutThenKill:       {existing.VerbPartition, existing.VerbHeal, existing.VerbKill, existing.VerbStart},
}

// SeqVerbs are the commands each sequence step runs on the existing
// backend (and the settle step that undoes it).
var SeqVerbs = map[string][]string{
	"partition": {existing.VerbPartition, existing.VerbHeal}, "heal": {existing.VerbHeal},
	"kill": {existing.VerbKill, existing.VerbStart}, "crash": {existing.VerbKill, existing.VerbStart},
	"stop": {existing.VerbStop, existing.VerbStart}, "start": {existing.VerbStart},
	"pause": {existing.VerbPause, existing.VerbResume}, "resume": {existing.VerbResume},
	"rejoin": {existing.VerbRejoin}, "wait": nil,
}

// verbsNeeded lists the commands the faults need, or refuses a fault the
// backend cannot run on a user's cluster.
func verbsNeeded(faults []nemesis.Fault, seq nemesis.Sequence, allowPromote bool) ([]string, error) {
	var need []string
	for _, fl := range faults {
		v, ok := FaultVerbs[fl.Kind]
		if !ok || fl.Kind == nemesis.CutThenKill && fl.Target == "cancel" {
			return nil, usererr.New("--nemesis %s: not on a cluster strongcheck did not build (it cancels or stops other sessions' backends, or shapes links)", fl)
		}
		need = append(need, v...)
	}
	for _, s := range seq {
		if s.Verb == "promote" {
			if !allowPromote {
				return nil, usererr.New("--sequence %q: promotion needs --allow-promote", s)
			}
			continue
		}
		v, ok := SeqVerbs[s.Verb]
		if !ok {
			return nil, usererr.New("--sequence %q: not on a cluster strongcheck did not build (it cancels other sessions' commits)", s)
		}
		need = append(need, v...)
	}
	return need, nil
}

// ExistingOptions are the existing backend's options for t; logf, when
// set, receives the backend's log lines.
func (f *Flags) ExistingOptions(t harness.Test, logf func(string, ...any)) existing.Options {
	e := f.Existing
	return existing.Options{Nodes: e.parsed, Commands: e.commands, CommandTimeout: e.CmdTimeout, KeepTables: e.KeepTables,
		ClusterName: e.ClusterName, AllowFaults: e.AllowFaults, FaultsPlanned: len(t.Faults) > 0 || len(t.Sequence) > 0,
		AllowPromote: e.AllowPromote, Failover: t.Failover.Mode, Logf: logf}
}

// plannedFaults names the faults of t in one phrase.
func plannedFaults(t *harness.Test) string {
	if len(t.Sequence) > 0 {
		return "the sequence " + t.Sequence.String()
	}
	var out []string
	for _, f := range t.Faults {
		out = append(out, f.String())
	}
	return strings.Join(out, ", ")
}
