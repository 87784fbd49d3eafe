package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Strings that exercise every escaping rule of encoding/json.
var awkward = []string{"", "k3", "n1", `say "hi"`, `back\slash`, "line\nbreak\ttab\r", "\x00\x01\x1f",
	"<html>&amp;", "grüße", "日本", "\u2028\u2029", "bad utf8 \xff\xfe", "\b\f", "ok"}

func randomOp(rng *rand.Rand) Op {
	pick := func() string { return awkward[rng.IntN(len(awkward))] }
	maybe := func() bool { return rng.IntN(2) == 0 }
	op := Op{V: SchemaVersion, Index: rng.Int64N(1 << 40), Time: rng.Int64(), Process: Process(rng.IntN(50) - 2),
		Type: []Type{Invoke, OK, Fail, Info}[rng.IntN(4)], F: pick(), Workload: pick(), Key: pick(),
		Node: pick(), Error: pick(), Warning: pick()}
	if maybe() {
		op.Value = Int(rng.Int64() - rng.Int64())
	}
	if maybe() {
		op.Expect = Int(-rng.Int64N(1000))
	}
	if maybe() {
		op.Values = []int64{}
		for range rng.IntN(4) {
			op.Values = append(op.Values, rng.Int64()-rng.Int64())
		}
	}
	if maybe() {
		op.IDs = []int64{rng.Int64N(9)}
	}
	if maybe() {
		op.Lo, op.Hi = rng.Int64()-rng.Int64(), rng.Int64N(1<<40)-rng.Int64N(3)
		op.Missing = []int64{rng.Int64N(1 << 40)}
	}
	if maybe() {
		op.Transfer = &Transfer{ID: rng.Int64(), From: rng.IntN(5), To: -rng.IntN(5), Amount: rng.Int64N(100)}
	}
	if maybe() {
		op.Latency = rng.Int64N(1e9)
	}
	if maybe() {
		op.Txn = randomTxn(rng, pick)
	}
	if rng.IntN(8) == 0 {
		op.Fault = &Fault{ID: 3, Kind: "partition", Phase: PhaseStart, Targets: []string{pick()},
			Grudge: map[string][]string{"n1": {"n2"}}, Durations: map[string]int64{"kill": 5}}
	}
	return op
}

// The hand-written encoder writes exactly what encoding/json writes.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		op := randomOp(rng)
		want, err := json.Marshal(&op)
		require.NoError(t, err)
		got, err := op.AppendJSON([]byte("prefix"))
		require.NoError(t, err)
		require.Equal(t, "prefix"+string(want), string(got), "op %+v", op)
	}
}

func FuzzAppendJSON(f *testing.F) {
	for _, s := range awkward {
		f.Add(s, int64(7), -1)
	}
	f.Fuzz(func(t *testing.T, s string, v int64, proc int) {
		op := Op{V: 1, Process: Process(proc), Type: OK, F: s, Key: s, Error: s, Value: &v, Values: []int64{v}}
		want, err := json.Marshal(&op)
		require.NoError(t, err)
		got, err := op.AppendJSON(nil)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	})
}

// Many writers at once: one line per op, indexes in file order, times
// non-decreasing, and every op read back as written.
func TestWriterConcurrentRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	w, err := Create(path, time.Now())
	require.NoError(t, err)
	const workers, per = 8, 500
	var wg sync.WaitGroup
	for p := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				op := Op{Process: Process(p), Type: Invoke, F: FWrite, Key: "k1", Value: Int(int64(p*per + i)), Error: `a "quoted" error`}
				_, err := w.Append(op)
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	require.NoError(t, w.Close())
	_, err = w.Append(Op{Type: OK})
	require.Error(t, err, "append after close")

	h, err := ReadFile(path)
	require.NoError(t, err)
	require.False(t, h.Torn)
	require.Len(t, h.Ops, workers*per)
	seen := map[int64]bool{}
	for i, op := range h.Ops {
		require.Equal(t, int64(i), op.Index)
		if i > 0 {
			require.GreaterOrEqual(t, op.Time, h.Ops[i-1].Time)
		}
		require.Equal(t, `a "quoted" error`, op.Error)
		seen[*op.Value] = true
	}
	require.Len(t, seen, workers*per)
}

func TestReaderTornAndCorrupt(t *testing.T) {
	var buf bytes.Buffer
	for i := range 3 {
		op := Op{V: SchemaVersion, Index: int64(i), Process: 0, Type: OK, F: FRead}
		b, err := op.Marshal()
		require.NoError(t, err)
		buf.Write(append(b, '\n'))
	}
	whole := buf.String()

	// A killed writer: the last line has no newline and does not parse.
	h, err := Read(strings.NewReader(whole[:len(whole)-7]))
	require.NoError(t, err)
	assert.True(t, h.Torn)
	assert.Equal(t, 3, h.TornLine)
	assert.Len(t, h.Ops, 2)

	cases := map[string]struct {
		text string
		line int
	}{
		"garbage in the middle": {strings.Replace(whole, `"f":"read"}`+"\n", `"f":"read"`+"\n", 1), 1},
		"other schema":          {strings.Replace(whole, `{"v":2,"index":1`, `{"v":9,"index":1`, 1), 2},
		"index gap":             {strings.Replace(whole, `"index":2`, `"index":5`, 1), 3},
		"unknown type":          {strings.Replace(whole, `"type":"ok"`, `"type":"maybe"`, 1), 1},
		"empty line":            {strings.Replace(whole, "\n", "\n\n", 1), 2},
	}
	for name, c := range cases {
		h, err := Read(strings.NewReader(c.text))
		var ce *CorruptError
		require.True(t, errors.As(err, &ce), "%s: %v", name, err)
		assert.True(t, errors.Is(err, ErrCorrupt), name)
		assert.Equal(t, c.line, ce.Line, name)
		require.NotNil(t, h, "%s: the operations before the bad line are returned", name)
		assert.Len(t, h.Ops, c.line-1, "%s: every line before the bad one is kept", name)
	}

	// Lines longer than the reader's buffer: a corrupt one is named, one
	// that parses is read.
	long := strings.Repeat(" ", 1<<20+10)
	h, err = Read(strings.NewReader(whole + strings.Repeat("x", 1<<20+10) + "\n"))
	var ce *CorruptError
	require.True(t, errors.As(err, &ce), "%v", err)
	assert.Equal(t, 4, ce.Line)
	assert.Len(t, h.Ops, 3)
	h, err = Read(strings.NewReader(whole[:len(whole)-1] + long + "\n"))
	require.NoError(t, err)
	assert.Len(t, h.Ops, 3)

	// A crash of the machine can leave the file's end zero-filled: that is
	// a torn tail, not corruption, with or without a newline among the
	// zeros; zeros followed by data are corruption.
	for name, c := range map[string]struct {
		text      string
		torn      bool
		ops, line int
	}{
		"zeros at the end":             {whole + "\x00\x00\x00\x00", true, 3, 4},
		"zeros and newlines":           {whole + "\x00\x00\n\x00\n", true, 3, 4},
		"a line cut short by zeros":    {whole[:len(whole)-9] + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\n\x00", true, 2, 3},
		"zeros then data is corrupt":   {whole[:len(whole)-9] + "\x00\x00\n" + whole, false, 2, 3},
		"a complete garbage last line": {whole + "garbage\n", false, 3, 4},
	} {
		h, err := Read(strings.NewReader(c.text))
		require.NotNil(t, h, name)
		assert.Len(t, h.Ops, c.ops, name)
		if c.torn {
			require.NoError(t, err, name)
			assert.True(t, h.Torn, name)
			assert.Equal(t, c.line, h.TornLine, name)
		} else {
			var ce *CorruptError
			require.True(t, errors.As(err, &ce), "%s: %v", name, err)
			assert.Equal(t, c.line, ce.Line, name)
		}
	}
}

// The writer flushes in the background: a reader of the file (another
// process, after a crash of this one) sees every appended line within
// about FlushDelay, without waiting for Close.
func TestWriterLinesVisibleBeforeClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	w, err := Create(path, time.Now())
	require.NoError(t, err)
	defer w.Close()
	for range 10 {
		_, err := w.Append(Op{Process: 1, Type: Invoke, F: FAdd, Value: Int(1)})
		require.NoError(t, err)
	}
	t0 := time.Now()
	var n int
	for time.Since(t0) < 5*time.Second {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		h, err := Read(bytes.NewReader(b))
		require.NoError(t, err)
		if n = len(h.Ops); n == 10 {
			break
		}
		time.Sleep(FlushDelay / 4)
	}
	assert.Equal(t, 10, n, "lines written before Close")
	t.Logf("visible after %v (FlushDelay %v)", time.Since(t0), FlushDelay)
}

// Whatever moment the file is read at, while appends go on from several
// goroutines and past the pending limit, it holds the first n appends in
// order (at most a torn last line): the prefix a killed run leaves.
func TestWriterFileIsAlwaysAPrefix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	w, err := Create(path, time.Now())
	require.NoError(t, err)
	const workers, each = 4, 20000
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for p := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if _, err := w.Append(Op{Process: Process(p), Type: Invoke, F: FWrite, Key: "k1", Value: Int(int64(i))}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}()
	reads := 0
	for running := true; running; reads++ {
		select {
		case <-done:
			running = false
		default:
		}
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			b = b[:i+1]
		} else {
			b = nil
		}
		h, err := Read(bytes.NewReader(b))
		require.NoError(t, err)
		for i, op := range h.Ops {
			if op.Index != int64(i) {
				t.Fatalf("read %d: line %d has index %d: not a prefix", reads, i, op.Index)
			}
		}
	}
	require.NoError(t, w.Close())
	h, err := ReadFile(path)
	require.NoError(t, err)
	assert.Len(t, h.Ops, workers*each)
	t.Logf("%d reads while writing", reads)
}

func BenchmarkAppend(b *testing.B) {
	w, err := Create(filepath.Join(b.TempDir(), "history.jsonl"), time.Now())
	require.NoError(b, err)
	defer w.Close()
	op := Op{Process: 3, Type: OK, F: FWrite, Workload: WorkloadRegister, Key: "k7", Value: Int(123456), Node: "n1", Latency: 2100000}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Append(op); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	op := Op{V: 1, Index: 99, Time: 12345678, Process: 3, Type: OK, F: FWrite, Workload: WorkloadRegister, Key: "k7", Value: Int(123456), Node: "n1", Latency: 2100000}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf, _ = op.AppendJSON(buf[:0])
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(&op)
		}
	})
}

// BenchmarkScan reads a history of client lines as the harness writes
// them: the speed strongcheck check reads a long run at.
func BenchmarkScan(b *testing.B) {
	var buf bytes.Buffer
	w := Op{V: SchemaVersion, Process: 3, F: FWrite, Workload: WorkloadRegister, Key: "k7", Node: "n1"}
	for i := range 100000 {
		w.Index, w.Time, w.Value = int64(i), 3_000_000_000_000+int64(i)*250_000, Int(5_000_000+int64(i))
		w.Type = Invoke
		if i%2 == 1 {
			w.Type = OK
		}
		line, _ := w.Marshal()
		buf.Write(append(line, '\n'))
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		n := 0
		if _, err := Scan(bytes.NewReader(data), func(*Op) error { n++; return nil }); err != nil || n != 100000 {
			b.Fatalf("%d ops, %v", n, err)
		}
	}
}
