package results

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"github.com/strongcheck/strongcheck/internal/usererr"
	"io"
	"os"
)

// ErrCorrupt is wrapped by every error that means the history is not a
// strongcheck history of this schema (as opposed to an I/O error): the
// user's (usererr).
var ErrCorrupt = usererr.Sentinel("corrupt history")

// CorruptError names the line at which a history stopped making sense.
type CorruptError struct {
	Line   int
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("corrupt history: line %d: %s", e.Line, e.Reason)
}

// Unwrap lets errors.Is(err, ErrCorrupt) match.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// History is a history read back from disk.
type History struct {
	Ops []Op
	// Torn is true when the last line was incomplete (the run was killed
	// while writing it, or the machine crashed and left the file's end
	// zero-filled) and was dropped; TornLine is its line number.
	Torn     bool
	TornLine int
}

// ReadFile reads the history at path; see Read. On an error it returns
// what Read returned (the operations before a corrupt line), or nil when
// the file cannot be opened.
func ReadFile(path string) (*History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open history: %w", err)
	}
	defer f.Close()
	return Read(f)
}

// Read parses a history. A last line without its newline that does not parse
// is taken as torn by a killed writer and dropped (History.Torn says so), and
// so is a line cut short by zero bytes when nothing but zero bytes and
// whitespace follows it (what a crash of the machine can leave). Any other
// line that does not parse, has another schema version, an unknown type or an
// index out of sequence is a *CorruptError (wrapping ErrCorrupt) with its line
// number; the History returned with it still holds every operation before
// that line, so nothing recorded before a bad tail is lost. Only an I/O error
// returns a nil History.
func Read(r io.Reader) (*History, error) {
	h := &History{}
	tail, err := Scan(r, func(op *Op) error {
		h.Ops = append(h.Ops, *op)
		return nil
	})
	h.Torn, h.TornLine = tail.Torn, tail.TornLine
	var ce *CorruptError
	if err != nil && !errors.As(err, &ce) {
		return nil, err
	}
	return h, err
}

// Tail is what Scan says of a history's end.
type Tail struct {
	// Lines is the number of operations read.
	Lines int
	// Torn and TornLine: the last line was cut short (see Read) and
	// dropped.
	Torn     bool
	TornLine int
}

// ScanFile scans the history at path; see Scan.
func ScanFile(path string, fn func(op *Op) error) (Tail, error) {
	f, err := os.Open(path)
	if err != nil {
		return Tail{}, fmt.Errorf("open history: %w", err)
	}
	defer f.Close()
	return Scan(f, fn)
}

// Scan reads a history line by line and calls fn with each operation, in
// order, without keeping them: a history of any length is read in memory
// bounded by its longest line. fn's op is valid only during the call (it
// is reused). A torn last line ends the scan as in Read; a corrupt line is
// a *CorruptError after fn has seen every operation before it; an error
// from fn stops the scan and is returned as it is.
func Scan(r io.Reader, fn func(op *Op) error) (Tail, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var t Tail
	line := 0
	var op Op
	var full []byte
	var dec lineDecoder
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: gather it whole.
			full = append(full[:0], b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = br.ReadSlice('\n')
				full = append(full, b...)
			}
			b = full
		}
		if len(b) == 0 && err == io.EOF {
			return t, nil
		}
		if err != nil && err != io.EOF {
			return t, fmt.Errorf("read history: %w", err)
		}
		line++
		complete := err == nil
		trimmed := bytes.TrimSpace(b)
		if len(trimmed) == 0 {
			if complete {
				return t, &CorruptError{Line: line, Reason: "empty line"}
			}
			return t, nil
		}
		op = Op{}
		if uerr := dec.decode(&op, trimmed); uerr != nil {
			if !complete || (bytes.IndexByte(trimmed, 0) >= 0 && onlyZerosLeft(br)) {
				t.Torn, t.TornLine = true, line
				return t, nil
			}
			return t, &CorruptError{Line: line, Reason: uerr.Error()}
		}
		if op.V < MinSchemaVersion || op.V > SchemaVersion {
			return t, &CorruptError{Line: line, Reason: fmt.Sprintf("schema version %d, this strongcheck reads %d to %d", op.V, MinSchemaVersion, SchemaVersion)}
		}
		if !op.Type.Valid() {
			return t, &CorruptError{Line: line, Reason: fmt.Sprintf("unknown type %q", op.Type)}
		}
		if op.Index != int64(t.Lines) {
			return t, &CorruptError{Line: line, Reason: fmt.Sprintf("index %d, want %d", op.Index, t.Lines)}
		}
		if err := fn(&op); err != nil {
			return t, err
		}
		t.Lines++
		if !complete {
			return t, nil
		}
	}
}

// onlyZerosLeft reports whether nothing but zero bytes and whitespace is
// left to read from r.
func onlyZerosLeft(r *bufio.Reader) bool {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			switch c {
			case 0, ' ', '\t', '\n', '\r':
			default:
				return false
			}
		}
		if err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}
