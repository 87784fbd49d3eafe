package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// The list-append workload: F FTxn, Workload WorkloadAppend, and the
// transaction's micro-operations in Op.Txn. Its final reads (F FFinal) carry
// one MopRead per key in Txn.
const (
	WorkloadAppend = "append"
	FTxn           = "txn"
)

// Micro-operation functions, named as Jepsen names them.
const (
	MopAppend = "append" // append Value to the list at Key
	MopRead   = "r"      // read the list at Key
)

// Mop is one micro-operation of a transaction, written as Jepsen writes it:
// a triple [f, key, value]. An append's value is the element appended
// (unique per key within a run); a read's value is the list it returned, or
// null where it is unknown (in an invoke, and in a completion that is not
// ok). An empty list read is [] and distinct from null.
type Mop struct {
	F     string
	Key   int64
	Value int64   // MopAppend: the element appended
	Read  []int64 // MopRead: the list read, nil when unknown
}

// Append returns the micro-operation that appends v to the list at k.
func Append(k, v int64) Mop { return Mop{F: MopAppend, Key: k, Value: v} }

// ReadOf returns a read of k, with the list read (nil: not yet known).
func ReadOf(k int64, list []int64) Mop { return Mop{F: MopRead, Key: k, Read: list} }

// IsRead reports whether m reads (its value is a list); every other
// function carries an integer value.
func (m Mop) IsRead() bool { return m.F == MopRead }

// MarshalJSON writes the triple; AppendJSON writes the same bytes.
func (m Mop) MarshalJSON() ([]byte, error) { return m.appendJSON(nil), nil }

func (m Mop) appendJSON(dst []byte) []byte {
	dst = append(dst, '[')
	dst = appendString(dst, m.F)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, m.Key, 10)
	dst = append(dst, ',')
	switch {
	case !m.IsRead():
		dst = strconv.AppendInt(dst, m.Value, 10)
	case m.Read == nil:
		dst = append(dst, "null"...)
	default:
		dst = append(dst, '[')
		for i, x := range m.Read {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, x, 10)
		}
		dst = append(dst, ']')
	}
	return append(dst, ']')
}

// UnmarshalJSON reads what MarshalJSON writes: [f, key, int] or
// [f, key, null | [ints]].
func (m *Mop) UnmarshalJSON(b []byte) error {
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil {
		return fmt.Errorf("micro-operation %s: %w", b, err)
	}
	if len(parts) != 3 {
		return fmt.Errorf("micro-operation %s: want [f, key, value]", b)
	}
	var out Mop
	if err := json.Unmarshal(parts[0], &out.F); err != nil {
		return fmt.Errorf("micro-operation %s: f: %w", b, err)
	}
	if err := json.Unmarshal(parts[1], &out.Key); err != nil {
		return fmt.Errorf("micro-operation %s: key: %w", b, err)
	}
	v := bytes.TrimSpace(parts[2])
	switch {
	case bytes.Equal(v, []byte("null")):
		if !out.IsRead() {
			return fmt.Errorf("micro-operation %s: %q needs an integer value", b, out.F)
		}
	case len(v) > 0 && v[0] == '[':
		if !out.IsRead() {
			return fmt.Errorf("micro-operation %s: only %q reads a list", b, MopRead)
		}
		out.Read = []int64{}
		if err := json.Unmarshal(v, &out.Read); err != nil {
			return fmt.Errorf("micro-operation %s: list: %w", b, err)
		}
	default:
		if out.IsRead() {
			return fmt.Errorf("micro-operation %s: a read's value is a list or null", b)
		}
		if err := json.Unmarshal(v, &out.Value); err != nil {
			return fmt.Errorf("micro-operation %s: value: %w", b, err)
		}
	}
	*m = out
	return nil
}

// appendTxn appends the "txn" field when txn is not empty, as
// encoding/json's omitempty does.
func appendTxn(dst []byte, txn []Mop) []byte {
	if len(txn) == 0 {
		return dst
	}
	dst = append(dst, `,"txn":[`...)
	for i, m := range txn {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = m.appendJSON(dst)
	}
	return append(dst, ']')
}

// Isolation is a transaction isolation level of the list-append workload,
// as --isolation and test.json spell it.
type Isolation string

// The isolation levels the list-append workload takes.
const (
	ReadCommitted  Isolation = "read-committed"
	RepeatableRead Isolation = "repeatable-read"
	Serializable   Isolation = "serializable"
)

// IsolationLevels lists the levels, weakest first.
func IsolationLevels() []Isolation { return []Isolation{ReadCommitted, RepeatableRead, Serializable} }

// IsolationNames are IsolationLevels' names, for messages and help.
func IsolationNames() []string {
	var out []string
	for _, l := range IsolationLevels() {
		out = append(out, string(l))
	}
	return out
}
