package elle

import "github.com/strongcheck/strongcheck/results"

// Validity is the verdict of Check for its model: valid, invalid or
// unknown (the check could not decide: its time or memory budget ran out,
// or the history cannot be analysed). Unknown is never a pass. The values
// are those of checker.Verdict, so a caller can convert them directly.
type Validity string

// The three verdicts.
const (
	Valid   Validity = "valid"
	Invalid Validity = "invalid"
	Unknown Validity = "unknown"
)

// Result is what Check found in one history. It is meant to be stored as it
// is (JSON) and read by the report.
type Result struct {
	// Model is the consistency model the Verdict judges; Verdict says
	// whether the history satisfies it.
	Model   string   `json:"model"`
	Verdict Validity `json:"verdict"`
	// Summary is one plain sentence: what was checked and found.
	Summary string `json:"summary"`
	// Error says why the verdict is unknown, when it is.
	Error string `json:"error,omitempty"`

	// Txns counts the list-append transactions examined (final reads
	// included), by how they ended.
	Txns  int `json:"txns"`
	OK    int `json:"ok"`
	Info  int `json:"info"`
	Fail  int `json:"fail"`
	Keys  int `json:"keys"`
	Edges struct {
		WW       int `json:"ww"`
		WR       int `json:"wr"`
		RW       int `json:"rw"`
		Realtime int `json:"realtime"`
		Process  int `json:"process"`
	} `json:"edges"`

	// Anomalies are the anomalies found, most severe first, each kind at
	// most once.
	Anomalies []Anomaly `json:"anomalies,omitempty"`
	// Satisfies lists the models the history satisfies, strongest first;
	// RulesOut the models it violates, each with the anomalies that rule it
	// out; Undecided the models neither proven nor ruled out because a
	// search did not finish (see Incomplete).
	Satisfies []string   `json:"satisfies,omitempty"`
	RulesOut  []RuledOut `json:"rules_out,omitempty"`
	Undecided []string   `json:"undecided,omitempty"`
	// Incomplete lists the anomaly kinds whose search stopped at its
	// budget before it could rule them out.
	Incomplete []Kind `json:"incomplete,omitempty"`

	// FinalNode is the node whose final reads judged lost appends ("" when
	// there were none: lost appends were then not judged).
	FinalNode string `json:"final_node,omitempty"`
	// Notes are plain sentences about what could not be used (failed
	// final reads, values appended twice, ...).
	Notes []string `json:"notes,omitempty"`

	ElapsedNS int64 `json:"elapsed_ns"`
}

// Anomaly is one kind of anomaly found, with its count and the first cases.
type Anomaly struct {
	// Kind is a stable name, as Elle names it (G0, G1a, G-single-realtime,
	// internal, ...).
	Kind Kind `json:"kind"`
	// Count is how many were found: cycles for the cycle classes (distinct
	// cycles, at most a search budget's worth per strongly connected
	// component: AtLeast then says there may be more), reads for the read
	// anomalies, appends for lost appends.
	Count   int  `json:"count"`
	AtLeast bool `json:"at_least,omitempty"`
	// Standby is how many of Count involve a transaction that a standby
	// served (by its node's role when it began).
	Standby int `json:"standby,omitempty"`
	// Explanation is one sentence on what this kind of anomaly means.
	Explanation string `json:"explanation"`
	// Evidence are the history indices of the invokes of the transactions
	// in Cases (a transaction without an invoke: its completion), in
	// order of first appearance.
	Evidence []int64 `json:"evidence"`
	// Cases are the first few instances, each explained in words.
	Cases []Case `json:"cases"`
}

// Case is one instance of an anomaly.
type Case struct {
	// Text explains it in words, naming the transactions T1, T2, ... of
	// Txns ("T1 appended 5 to key 3, which T2 read ...").
	Text string `json:"text"`
	// Txns are the transactions involved; T1 is Txns[0].
	Txns []TxnRef `json:"txns"`
	// Key is the key concerned, for anomalies about one key.
	Key *int64 `json:"key,omitempty"`
	// Cycle is the cycle, for the cycle classes: its steps in order, each
	// from one of Txns to the next; the last step returns to the first.
	Cycle []Step `json:"cycle,omitempty"`
	// Shortest says the cycle is the shortest one through its first edge
	// (false when the search stopped at its budget first).
	Shortest bool `json:"shortest,omitempty"`
}

// TxnRef is one transaction as a reader of the report needs it.
type TxnRef struct {
	Name     string `json:"name"`     // T1, T2, ...
	Invoke   int64  `json:"invoke"`   // history index of the invoke (-1: none)
	Complete int64  `json:"complete"` // history index of the completion (-1: none)
	Process  int    `json:"process"`
	Type     string `json:"type"` // ok, info, fail
	Node     string `json:"node,omitempty"`
	// Role is the node's role when the transaction began, as the nemesis
	// recorded it (primary, standby, down, ...); "" when unknown.
	Role       string `json:"role,omitempty"`
	InvokeNS   int64  `json:"invoke_ns"`
	CompleteNS int64  `json:"complete_ns"` // -1: never completed
	// Final marks a final read of the settle step.
	Final bool `json:"final,omitempty"`
	// Txn is what the transaction did, as its completion recorded it (its
	// invoke when it did not complete ok).
	Txn []results.Mop `json:"txn"`
}

// Step is one edge of a cycle.
type Step struct {
	From int    `json:"from"` // index into Case.Txns
	To   int    `json:"to"`
	Rel  Rel    `json:"rel"`
	Key  *int64 `json:"key,omitempty"`
	// Value is the element the dependency is about: the one appended and
	// read (wr), appended next (ww, rw).
	Value *int64 `json:"value,omitempty"`
	// Text is the step in words.
	Text string `json:"text"`
}

// Rel is a dependency relation between transactions.
type Rel string

// The relations of the dependency graph.
const (
	// WW: the second appended to a key right after the first (write-write).
	WW Rel = "ww"
	// WR: the second read what the first appended (write-read).
	WR Rel = "wr"
	// RW: the first read a key before the second's append to it
	// (read-write, an anti-dependency).
	RW Rel = "rw"
	// Realtime: the first completed before the second began.
	Realtime Rel = "realtime"
	// Process: the same client process ran the first, then the second.
	Process Rel = "process"
)

// RuledOut is one model the history violates and the anomalies that show it.
type RuledOut struct {
	Model string `json:"model"`
	// By are the kinds found that the model forbids, with their counts.
	By []KindCount `json:"by"`
}

// KindCount is a kind with its count.
type KindCount struct {
	Kind  Kind `json:"kind"`
	Count int  `json:"count"`
}
