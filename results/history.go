package results

import (
	"fmt"
	"strconv"
)

// SchemaVersion is written in every history line as "v". A reader refuses
// lines of a version it does not know rather than guess at their meaning.
// Version 2 added set reads over a range (Lo, Hi, Missing) and dropped the
// latency of client completions (their invoke has the start); version 1
// histories still read.
const SchemaVersion = 2

// MinSchemaVersion is the oldest history version this strongcheck reads.
const MinSchemaVersion = 1

// Type is the kind of a history entry, as in Jepsen.
type Type string

// The four entry types. Fail means the operation certainly did not take
// effect; Info means it may or may not have (any error or timeout that touches
// a commit). A completion (ok, fail, info) always follows the invoke of the
// same process.
const (
	Invoke Type = "invoke"
	OK     Type = "ok"
	Fail   Type = "fail"
	Info   Type = "info"
)

// Valid reports whether t is one of the four entry types.
func (t Type) Valid() bool {
	switch t {
	case Invoke, OK, Fail, Info:
		return true
	}
	return false
}

// Process identifies who performed an operation: a client worker (0, 1, ...),
// the nemesis, or the harness itself (set-up and settle steps). In JSON the
// nemesis is the string "nemesis" and the harness "harness"; clients are
// numbers. A client worker whose operation ended Info continues under a new
// process number, as in Jepsen, so a process never has two open operations.
type Process int

// Special processes.
const (
	NemesisProcess Process = -1
	HarnessProcess Process = -2
)

// IsClient reports whether p is a client worker.
func (p Process) IsClient() bool { return p >= 0 }

func (p Process) String() string {
	switch p {
	case NemesisProcess:
		return "nemesis"
	case HarnessProcess:
		return "harness"
	}
	return strconv.Itoa(int(p))
}

// MarshalJSON writes clients as numbers and the others by name.
func (p Process) MarshalJSON() ([]byte, error) {
	if p.IsClient() {
		return strconv.AppendInt(nil, int64(p), 10), nil
	}
	return strconv.AppendQuote(nil, p.String()), nil
}

// UnmarshalJSON accepts what MarshalJSON writes.
func (p *Process) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"nemesis"`:
		*p = NemesisProcess
		return nil
	case `"harness"`:
		*p = HarnessProcess
		return nil
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 {
		return fmt.Errorf("process %s: want a client number, \"nemesis\" or \"harness\"", b)
	}
	*p = Process(n)
	return nil
}

// Function names (the "f" field). Workloads and the nemesis use these; a
// checker ignores functions it does not know.
const (
	FRead     = "read"     // register: read one key; set: read all; bank: read all balances
	FWrite    = "write"    // register: write Value to Key
	FCAS      = "cas"      // register: compare Expect, set Value
	FAdd      = "add"      // set: insert element Value
	FTransfer = "transfer" // bank: move Transfer.Amount
	FInit     = "init"     // set-up: initial state of a workload (bank balances)
	FFinal    = "final"    // settle: final read on one node after the run healed
	// FTopology is the harness's record of the roles when the clients
	// start (process harness, a Fault with the node states).
	FTopology = "topology"
)

// Workload names (the "workload" field).
const (
	WorkloadRegister = "register"
	WorkloadSet      = "set"
	WorkloadBank     = "bank"
	WorkloadNemesis  = "nemesis"
)

// Op is one line of the history. Fields are typed per use rather than a
// generic value: Value for single integers (register values, set elements),
// Expect for the old value of a compare-and-set, Values for whole reads (a
// set's elements, a bank's balances by account number, the bank's transfer
// ids in a final read), Transfer for bank transfers, Txn for list-append
// transactions and Fault for nemesis and failover steps.
type Op struct {
	V        int     `json:"v"`
	Index    int64   `json:"index"`
	Time     int64   `json:"time"` // ns since the run started, monotonic
	Process  Process `json:"process"`
	Type     Type    `json:"type"`
	F        string  `json:"f"`
	Workload string  `json:"workload,omitempty"`
	Key      string  `json:"key,omitempty"`
	Value    *int64  `json:"value,omitempty"`
	Expect   *int64  `json:"expect,omitempty"`
	Values   []int64 `json:"values,omitempty"`
	IDs      []int64 `json:"ids,omitempty"` // bank final read: ids of transfers present
	// Lo and Hi are the range of set elements a read covered (schema 2):
	// every element in [Lo, Hi] is present but those in Missing, and
	// Values lists the elements found outside the range (none, in a
	// sound database). A set read without Lo covered the whole set, and
	// Values lists every element (schema 1).
	Lo       int64     `json:"lo,omitempty"`
	Hi       int64     `json:"hi,omitempty"`
	Missing  []int64   `json:"missing,omitempty"`
	Transfer *Transfer `json:"transfer,omitempty"`
	Txn      []Mop     `json:"txn,omitempty"` // list-append: the transaction's micro-operations (txn.go)
	Node     string    `json:"node,omitempty"`
	Error    string    `json:"error,omitempty"`
	Warning  string    `json:"warning,omitempty"`
	Latency  int64     `json:"latency,omitempty"` // harness and nemesis completions: ns since the invoke
	Fault    *Fault    `json:"fault,omitempty"`
}

// Int returns a pointer to v, for Op.Value and Op.Expect.
func Int(v int64) *int64 { return &v }

// Transfer is a bank transfer: Amount from account From to account To; ID is
// unique within the run and is logged in the same transaction, so the final
// state shows whether the transfer survived.
type Transfer struct {
	ID     int64 `json:"id"`
	From   int   `json:"from"`
	To     int   `json:"to"`
	Amount int64 `json:"amount"`
}

// Fault describes a nemesis or failover step. Faults are windows: Phase
// "start" opens window ID, Phase "stop" closes it; Phase "step" is a step
// inside a window (a promotion, a rejoin) and "info" a plain observation.
type Fault struct {
	ID      int                 `json:"id"`
	Kind    string              `json:"kind"` // kill-primary, partition, pause, failover, rejoin, ...
	Phase   string              `json:"phase"`
	Targets []string            `json:"targets,omitempty"`
	Grudge  map[string][]string `json:"grudge,omitempty"`
	Primary string              `json:"primary,omitempty"` // the primary after this step
	Detail  string              `json:"detail,omitempty"`
	// Nodes is each node's state at this moment: role, LSNs, timeline.
	Nodes []NodeState `json:"nodes,omitempty"`
	// Replication is the primary's pg_stat_replication at this moment.
	Replication []ReplicationState `json:"replication,omitempty"`
	// Durations of the steps taken, in ns, by step name (kill, promote, ...).
	Durations map[string]int64 `json:"durations,omitempty"`
	// Forced marks a promotion of a node that the sync list did not
	// guarantee to hold every acknowledged commit (an operator's choice,
	// or no such node could be known).
	Forced bool `json:"forced,omitempty"`
	// Verified says what the nemesis checked to know the step took effect
	// (processes gone or stopped, peers unreachable, a writable primary).
	Verified string `json:"verified,omitempty"`
}

// Fault phases.
const (
	PhaseStart = "start"
	PhaseStop  = "stop"
	PhaseStep  = "step"
	PhaseInfo  = "info"
)

// NodeState is one node as the nemesis saw it.
type NodeState struct {
	Node       string `json:"node"`
	Role       string `json:"role"` // primary, standby, down, paused, unknown
	Timeline   int    `json:"timeline,omitempty"`
	CurrentLSN string `json:"current_lsn,omitempty"` // primary: pg_current_wal_lsn
	ReceiveLSN string `json:"receive_lsn,omitempty"` // standby: pg_last_wal_receive_lsn
	ReplayLSN  string `json:"replay_lsn,omitempty"`  // standby: pg_last_wal_replay_lsn
	Error      string `json:"error,omitempty"`
}

// ReplicationState is one row of pg_stat_replication.
type ReplicationState struct {
	Name       string `json:"application_name"`
	State      string `json:"state"`
	SyncState  string `json:"sync_state"`
	SentLSN    string `json:"sent_lsn,omitempty"`
	WriteLSN   string `json:"write_lsn,omitempty"`
	FlushLSN   string `json:"flush_lsn,omitempty"`
	ReplayLSN  string `json:"replay_lsn,omitempty"`
	ReplyAgeMS int64  `json:"reply_age_ms,omitempty"`
}

// CommitsWait reports whether the primary's commits wait for this
// standby's reply: its sync_state is sync (FIRST, or a list) or quorum
// (ANY); not potential or async.
func (r ReplicationState) CommitsWait() bool {
	return r.SyncState == "sync" || r.SyncState == "quorum"
}

// Marshal encodes op as one history line (without the newline).
func (op *Op) Marshal() ([]byte, error) { return op.AppendJSON(nil) }
