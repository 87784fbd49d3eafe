package results

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrCorrupt is wrapped by every error that means the history is not a
// strongcheck history of this schema (as opposed to an I/O error).
var ErrCorrupt = errors.New("corrupt history")

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
	br := bufio.NewReaderSize(r, 1<<20)
	h := &History{}
	line := 0
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: gather it whole.
			full := append([]byte(nil), b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = br.ReadSlice('\n')
				full = append(full, b...)
			}
			b = full
		}
		if len(b) == 0 && err == io.EOF {
			return h, nil
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read history: %w", err)
		}
		line++
		complete := err == nil
		trimmed := bytes.TrimSpace(b)
		if len(trimmed) == 0 {
			if complete {
				return h, &CorruptError{Line: line, Reason: "empty line"}
			}
			return h, nil
		}
		var op Op
		if uerr := json.Unmarshal(trimmed, &op); uerr != nil {
			if !complete || (bytes.IndexByte(trimmed, 0) >= 0 && onlyZerosLeft(br)) {
				h.Torn, h.TornLine = true, line
				return h, nil
			}
			return h, &CorruptError{Line: line, Reason: uerr.Error()}
		}
		if op.V < MinSchemaVersion || op.V > SchemaVersion {
			return h, &CorruptError{Line: line, Reason: fmt.Sprintf("schema version %d, this strongcheck reads %d to %d", op.V, MinSchemaVersion, SchemaVersion)}
		}
		if !op.Type.Valid() {
			return h, &CorruptError{Line: line, Reason: fmt.Sprintf("unknown type %q", op.Type)}
		}
		if op.Index != int64(len(h.Ops)) {
			return h, &CorruptError{Line: line, Reason: fmt.Sprintf("index %d, want %d", op.Index, len(h.Ops))}
		}
		h.Ops = append(h.Ops, op)
		if !complete {
			return h, nil
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
