package results

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends op's history line (without the newline) to dst and
// returns the extended slice. The bytes are exactly those of
// json.Marshal(op): readers and golden files cannot tell the two apart.
//
// It exists because the clients append two lines per operation and
// reflection-based encoding was a sixth of the harness's CPU per operation,
// CPU that a cluster on the same cores does not get. Client lines take the
// fast path without allocating; lines with a Fault (the nemesis's, a few
// per run) and strings that need escaping go through encoding/json.
func (op *Op) AppendJSON(dst []byte) ([]byte, error) {
	if op.Fault != nil {
		return appendSlow(dst, *op)
	}
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(op.V), 10)
	dst = append(dst, `,"index":`...)
	dst = strconv.AppendInt(dst, op.Index, 10)
	dst = append(dst, `,"time":`...)
	dst = strconv.AppendInt(dst, op.Time, 10)
	dst = append(dst, `,"process":`...)
	if op.Process.IsClient() {
		dst = strconv.AppendInt(dst, int64(op.Process), 10)
	} else {
		dst = appendString(dst, op.Process.String())
	}
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, string(op.Type))
	dst = append(dst, `,"f":`...)
	dst = appendString(dst, op.F)
	dst = appendOptString(dst, `,"workload":`, op.Workload)
	dst = appendOptString(dst, `,"key":`, op.Key)
	if op.Value != nil {
		dst = append(dst, `,"value":`...)
		dst = strconv.AppendInt(dst, *op.Value, 10)
	}
	if op.Expect != nil {
		dst = append(dst, `,"expect":`...)
		dst = strconv.AppendInt(dst, *op.Expect, 10)
	}
	dst = appendInts(dst, `,"values":`, op.Values)
	dst = appendInts(dst, `,"ids":`, op.IDs)
	if op.Lo != 0 {
		dst = append(dst, `,"lo":`...)
		dst = strconv.AppendInt(dst, op.Lo, 10)
	}
	if op.Hi != 0 {
		dst = append(dst, `,"hi":`...)
		dst = strconv.AppendInt(dst, op.Hi, 10)
	}
	dst = appendInts(dst, `,"missing":`, op.Missing)
	if t := op.Transfer; t != nil {
		dst = append(dst, `,"transfer":{"id":`...)
		dst = strconv.AppendInt(dst, t.ID, 10)
		dst = append(dst, `,"from":`...)
		dst = strconv.AppendInt(dst, int64(t.From), 10)
		dst = append(dst, `,"to":`...)
		dst = strconv.AppendInt(dst, int64(t.To), 10)
		dst = append(dst, `,"amount":`...)
		dst = strconv.AppendInt(dst, t.Amount, 10)
		dst = append(dst, '}')
	}
	dst = appendTxn(dst, op.Txn)
	dst = appendOptString(dst, `,"node":`, op.Node)
	dst = appendOptString(dst, `,"error":`, op.Error)
	dst = appendOptString(dst, `,"warning":`, op.Warning)
	if op.Latency != 0 {
		dst = append(dst, `,"latency":`...)
		dst = strconv.AppendInt(dst, op.Latency, 10)
	}
	return append(dst, '}'), nil
}

func appendOptString(dst []byte, name, s string) []byte {
	if s == "" {
		return dst
	}
	return appendString(append(dst, name...), s)
}

func appendInts(dst []byte, name string, xs []int64) []byte {
	if len(xs) == 0 {
		return dst
	}
	dst = append(append(dst, name...), '[')
	for i, x := range xs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, x, 10)
	}
	return append(dst, ']')
}

// appendString appends s as a JSON string. Printable ASCII without the
// characters encoding/json escapes is copied as it is; anything else (error
// messages with quotes, newlines, non-ASCII) is left to encoding/json, whose
// escaping rules are the reference.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendSlow encodes op with encoding/json. It takes a copy so that only
// this path's op escapes to the heap, not every caller's.
func appendSlow(dst []byte, op Op) ([]byte, error) {
	b, err := json.Marshal(&op)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}
