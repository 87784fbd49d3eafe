package results

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// fuzzPrefix is a well-formed history of n operations, as the Writer
// writes them, and its operations.
func fuzzPrefix(tb testing.TB, n int) ([]byte, []Op) {
	tb.Helper()
	var buf bytes.Buffer
	var ops []Op
	for i := range n {
		op := Op{V: SchemaVersion, Index: int64(i), Time: int64(i) * 1000, Process: Process(i % 3),
			Type: []Type{Invoke, OK, Fail, Info}[i%4], F: FRead, Key: "k1", Value: Int(int64(i))}
		b, err := op.Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		buf.Write(append(b, '\n'))
		ops = append(ops, op)
	}
	return buf.Bytes(), ops
}

// FuzzRead feeds Read a well-formed history of n operations followed by
// any bytes at all (n = 0: any input). Read must not panic; it fails only
// with a *CorruptError that names a line after the well-formed ones, with a
// reason; and whatever the tail, torn or corrupt, it returns every one of
// the n operations recorded before it, unchanged.
//
//	go test -run '^$' -fuzz FuzzRead -fuzztime 60s ./results/
func FuzzRead(f *testing.F) {
	f.Fuzz(func(t *testing.T, n uint8, tail []byte) {
		k := int(n % 16)
		prefix, want := fuzzPrefix(t, k)
		h, err := Read(bytes.NewReader(append(prefix, tail...)))
		if h == nil {
			t.Fatalf("no history returned (err %v): the %d operations before the tail are lost", err, k)
		}
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("an in-memory read failed with %T %v, want a *CorruptError", err, err)
			}
			if ce.Line <= k || ce.Reason == "" || !strings.Contains(err.Error(), "line") {
				t.Fatalf("corrupt error %q names line %d, want a line after the %d well-formed ones, with a reason", err, ce.Line, k)
			}
		}
		if h.Torn && h.TornLine <= k {
			t.Fatalf("torn line %d within the %d well-formed lines", h.TornLine, k)
		}
		if len(h.Ops) < k {
			t.Fatalf("%d operations read back, %d were recorded before the tail", len(h.Ops), k)
		}
		for i, op := range h.Ops {
			if op.Index != int64(i) || op.V < MinSchemaVersion || op.V > SchemaVersion || !op.Type.Valid() {
				t.Fatalf("operation %d accepted with index %d, schema %d, type %q", i, op.Index, op.V, op.Type)
			}
			if i < k {
				got, _ := op.Marshal()
				exp, _ := want[i].Marshal()
				if !bytes.Equal(got, exp) {
					t.Fatalf("operation %d changed: %s, recorded %s", i, got, exp)
				}
			}
		}
	})
}
