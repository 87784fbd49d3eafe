// Package checker judges a history: pure functions from a results.History to
// a Result, with no access to the cluster or the disk. Checkers are
// linearizable (porcupine, one register model per key), rpo (every
// acknowledged write survives every promotion), stale-read (reads on
// standbys older than an acknowledged write), bank (totals and transfers),
// list-append (Elle's dependency-graph analysis of transactions, package
// checker/elle) and availability (outcomes, latencies and RTO per fault
// window).
package checker

import "github.com/strongcheck/strongcheck/checker/elle"

// Verdict is the outcome of one checker or of the whole run.
type Verdict string

// Verdicts. Unknown means a checker could not decide (its time limit ran out,
// the history was cut short before anything could be judged); it is never a
// pass.
const (
	Valid   Verdict = "valid"
	Invalid Verdict = "invalid"
	Unknown Verdict = "unknown"
)

// Combine is the verdict of several: invalid if any is invalid, else unknown
// if any is unknown (or there is none), else valid.
func Combine(vs ...Verdict) Verdict {
	if len(vs) == 0 {
		return Unknown
	}
	out := Valid
	for _, v := range vs {
		switch v {
		case Invalid:
			return Invalid
		case Valid:
		default:
			out = Unknown
		}
	}
	return out
}

// Result is the judgement of one history. It is stored as results.json.
type Result struct {
	Schema int `json:"schema"`
	// Verdict is the judgement under Model, the model the run was asked to
	// satisfy (Options.Model; the exit code follows it).
	Verdict Verdict `json:"verdict"`
	Model   Model   `json:"model,omitempty"`
	// Models judges the history under every model: which it satisfies,
	// and which anomalies rule the others out.
	Models []ModelResult `json:"models,omitempty"`
	// Anomalies are the named anomalies found, each with its count,
	// evidence, and whether PostgreSQL documents it for the configuration.
	Anomalies []Anomaly `json:"anomalies,omitempty"`
	// Checks has one entry per checker that ran, in a fixed order.
	Checks []Check `json:"checks"`
	// Ops is the number of history entries read; Torn says the history
	// ended in a torn line (a killed run) and was judged up to it.
	Ops  int  `json:"ops"`
	Torn bool `json:"torn,omitempty"`
	// Notes are plain sentences for the reader: what the verdict means
	// for the guide's promise, which setting would change it.
	Notes []string `json:"notes,omitempty"`
}

// ResultSchema is the version of Result's JSON form (2: models and
// anomalies).
const ResultSchema = 2

// Check is one checker's judgement. Exactly one of the detail fields is set,
// the one named by Name.
type Check struct {
	Name    string  `json:"name"`
	Verdict Verdict `json:"verdict"`
	// Summary is one plain sentence: what was found, with counts.
	Summary string `json:"summary"`
	// Error says why the verdict is unknown, when it is.
	Error string `json:"error,omitempty"`
	// ElapsedNS is how long the check took.
	ElapsedNS int64 `json:"elapsed_ns"`

	Linearizable *LinearizableResult `json:"linearizable,omitempty"`
	RPO          *RPOResult          `json:"rpo,omitempty"`
	StaleRead    *StaleReadResult    `json:"stale_read,omitempty"`
	Bank         *BankResult         `json:"bank,omitempty"`
	Availability *AvailabilityResult `json:"availability,omitempty"`
	Faults       *FaultsResult       `json:"faults,omitempty"`
	ListAppend   *elle.Result        `json:"list_append,omitempty"` // listappend.go
}

// Checker names.
const (
	NameLinearizable    = "linearizable"
	NameLinearizableAll = "linearizable-all"
	NameFaults          = "faults"
	NameRPO             = "rpo"
	NameStaleRead       = "stale-read"
	NameBank            = "bank"
	NameAvailability    = "availability"
)

// OpRef points at history entries and carries what a reader needs to believe
// an anomaly without the raw history.
type OpRef struct {
	Invoke     int64  `json:"invoke"`   // index of the invoke entry
	Complete   int64  `json:"complete"` // index of the completion entry (-1 if none)
	Process    int    `json:"process"`
	F          string `json:"f"`
	Key        string `json:"key,omitempty"`
	Value      *int64 `json:"value,omitempty"`
	Node       string `json:"node,omitempty"`
	Type       string `json:"type"`        // ok, fail, info
	InvokeNS   int64  `json:"invoke_ns"`   // time of the invoke
	CompleteNS int64  `json:"complete_ns"` // time of the completion
	Warning    string `json:"warning,omitempty"`
	// SinceFaultNS is the time from the start of the latest fault window
	// before the invoke (-1 when there was none).
	SinceFaultNS int64  `json:"since_fault_ns"`
	FaultID      int    `json:"fault_id,omitempty"`
	FaultKind    string `json:"fault_kind,omitempty"`
	// Role is the node's role when the operation was invoked, as the
	// nemesis recorded the roles (primary or standby).
	Role string `json:"role,omitempty"`
}

// LinearizableResult is porcupine's judgement, per key.
type LinearizableResult struct {
	// Scope says which reads were judged with the writes: "primary" (the
	// reads the primary served) or "all" (every node's).
	Scope    string   `json:"scope,omitempty"`
	Keys     int      `json:"keys"`
	Ops      int      `json:"ops"`    // operations given to porcupine
	Pruned   int      `json:"pruned"` // info writes never observed, left out
	BadKeys  []string `json:"bad_keys,omitempty"`
	TimedOut []string `json:"timed_out,omitempty"` // keys whose search hit the time limit
	// Visualization is porcupine's HTML for the first failing key, with the
	// nemesis windows as annotations ("" when valid).
	Visualization string `json:"-"`
	// Evidence: for each bad key, the operations of the longest partial
	// linearization's frontier (the reads that could not be placed).
	Evidence map[string][]OpRef `json:"evidence,omitempty"`
	// Explained maps each bad key that named anomalies explain to their
	// kinds; Unexplained lists the others (each a non-linearizable
	// anomaly of its own).
	Explained   map[string][]Kind `json:"explained,omitempty"`
	Unexplained []string          `json:"unexplained,omitempty"`
}

// RPOResult lists acknowledged writes missing from the final state.
type RPOResult struct {
	Acknowledged int     `json:"acknowledged"` // ok writes checked
	Lost         []OpRef `json:"lost,omitempty"`
	// LostCount, UnexpectedCount and VanishedCount are the full counts;
	// the lists hold the first 100 of each, in history order.
	LostCount       int `json:"lost_count"`
	UnexpectedCount int `json:"unexpected_count"`
	VanishedCount   int `json:"vanished_count"`
	// FailedPresentCount counts writes recorded as fail whose effect was
	// read or is in the final state.
	FailedPresentCount int `json:"failed_present_count,omitempty"`
	// LostWithWarning are lost writes that were acknowledged with
	// "canceling wait for synchronous replication" (counted in Lost too).
	LostWithWarning []OpRef `json:"lost_with_warning,omitempty"`
	// AckedWithWarning counts every write acknowledged with that warning.
	AckedWithWarning int `json:"acked_with_warning"`
	// Recovered counts info writes that are in the final state.
	Recovered int `json:"recovered"`
	// Unexpected are reads of values no write ever produced.
	Unexpected []OpRef `json:"unexpected,omitempty"`
	// Vanished are reads of values that were observed and then absent from
	// the final state (a read of a lost write).
	Vanished []OpRef `json:"vanished,omitempty"`
	// FinalNodes lists the nodes whose final reads were used, and
	// Divergent the nodes whose final state differs from the primary's.
	FinalNodes []string `json:"final_nodes,omitempty"`
	Divergent  []string `json:"divergent,omitempty"`
	// Evidence is the nemesis state (LSNs, sync states) recorded closest
	// before each lost write's acknowledgement, by fault id.
	Evidence map[int]FaultEvidence `json:"evidence,omitempty"`
}

// FaultEvidence is what the nemesis recorded about one fault window.
type FaultEvidence struct {
	ID         int       `json:"id"`
	Kind       string    `json:"kind"`
	StartNS    int64     `json:"start_ns"`
	StopNS     int64     `json:"stop_ns"` // -1 if never healed in the history
	Targets    []string  `json:"targets,omitempty"`
	Primary    string    `json:"primary,omitempty"`
	Detail     string    `json:"detail,omitempty"`
	Nodes      []NodeLSN `json:"nodes,omitempty"`
	SyncStates []string  `json:"sync_states,omitempty"` // "n2=streaming/quorum" ...
}

// NodeLSN is a node's role and LSNs at a nemesis step.
type NodeLSN struct {
	Node string `json:"node"`
	Role string `json:"role"`
	LSN  string `json:"lsn,omitempty"`
	// ReplayLSN is a standby's replay position (LSN is then its receive
	// position); Timeline is the node's timeline.
	ReplayLSN string `json:"replay_lsn,omitempty"`
	Timeline  int    `json:"timeline,omitempty"`
	Error     string `json:"error,omitempty"`
}

// StaleRead is one read that returned a value older than a write
// acknowledged before the read began.
type StaleRead struct {
	Read OpRef `json:"read"`
	// Newer is the acknowledged write the read should have seen.
	Newer OpRef `json:"newer"`
	// StaleNS is how long after Newer's acknowledgement the read began.
	StaleNS int64 `json:"stale_ns"`
}

// StaleReadResult counts stale reads by node.
type StaleReadResult struct {
	Reads       int            `json:"reads"`           // ok reads examined
	ByNode      map[string]int `json:"by_node"`         // reads per node
	StaleByNode map[string]int `json:"stale_by_node"`   // stale reads per node
	Stale       []StaleRead    `json:"stale,omitempty"` // the first 100, oldest first
	StaleCount  int            `json:"stale_count"`
	MaxStaleNS  int64          `json:"max_stale_ns"`
	P50StaleNS  int64          `json:"p50_stale_ns"`
}

// BankResult checks totals and transfers.
type BankResult struct {
	Accounts      int        `json:"accounts"`
	Total         int64      `json:"total"` // from the init entry
	Reads         int        `json:"reads"`
	BadReads      []BadTotal `json:"bad_reads,omitempty"` // first 100
	BadReadCount  int        `json:"bad_read_count"`
	Transfers     int        `json:"transfers"` // ok transfers
	LostTransfers []OpRef    `json:"lost_transfers,omitempty"`
	// FinalBalances and ExpectedBalances are set when the final balances
	// on the primary differ from the initial ones plus the transfers in
	// the final transfer log.
	FinalBalances    []int64 `json:"final_balances,omitempty"`
	ExpectedBalances []int64 `json:"expected_balances,omitempty"`
}

// BadTotal is a bank read whose balances do not sum to the total.
type BadTotal struct {
	Read     OpRef   `json:"read"`
	Balances []int64 `json:"balances"`
	Sum      int64   `json:"sum"`
}

// AvailabilityResult describes outcomes and latency inside and outside fault
// windows. It is informational: its verdict is valid unless the history has
// no client operation at all (unknown).
type AvailabilityResult struct {
	Windows []Window `json:"windows"`
	// Outside aggregates every client operation outside all windows.
	Outside Outcomes `json:"outside"`
	All     Outcomes `json:"all"`
	// Failovers has one entry per kill of the primary.
	Failovers []RTO `json:"failovers,omitempty"`
}

// Window is one fault window and what clients saw during it.
type Window struct {
	ID      int      `json:"id"`
	Kind    string   `json:"kind"`
	Targets []string `json:"targets,omitempty"`
	StartNS int64    `json:"start_ns"`
	StopNS  int64    `json:"stop_ns"`
	Ops     Outcomes `json:"ops"`
	// WriteGapNS is the longest time inside the window with no ok write.
	WriteGapNS int64 `json:"write_gap_ns"`
}

// Outcomes counts completions and latency quantiles (ns) of ok operations.
type Outcomes struct {
	OK   int   `json:"ok"`
	Fail int   `json:"fail"`
	Info int   `json:"info"`
	P50  int64 `json:"p50_ns"`
	P95  int64 `json:"p95_ns"`
	P99  int64 `json:"p99_ns"`
	Max  int64 `json:"max_ns"`
}

// RTO is one failover: from the kill to the promotion, and to the first
// acknowledged write after it.
type RTO struct {
	FaultID        int    `json:"fault_id"`
	Old            string `json:"old"`
	New            string `json:"new"`
	KillNS         int64  `json:"kill_ns"`
	PromotedNS     int64  `json:"promoted_ns"`    // -1: never promoted
	FirstWriteNS   int64  `json:"first_write_ns"` // -1: no ok write after the kill
	ToPromotionNS  int64  `json:"to_promotion_ns"`
	ToFirstWriteNS int64  `json:"to_first_write_ns"`
}
