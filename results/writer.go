package results

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// Writer appends operations to a history file as they happen. Each Append is
// one write(2) of one complete line, so a process killed at any moment leaves
// at most a torn last line; the file is fsynced every SyncEvery in the
// background and on Close. A Writer is safe for concurrent use: it assigns the
// index and (unless set) the time of every operation in the order of the
// appends, so the file is ordered by index. Times a caller sets itself (a
// completion's, taken when the operation returned) may precede by a few
// microseconds those of lines appended just before: readers must order by
// Time where real-time order matters, never by line.
type Writer struct {
	mu     sync.Mutex
	f      *os.File
	start  time.Time
	next   int64
	buf    []byte
	err    error
	dirty  bool
	done   chan struct{}
	closed bool
	wg     sync.WaitGroup
}

// SyncEvery is how often the history is fsynced while a run goes on.
const SyncEvery = 50 * time.Millisecond

// Create creates (truncating) the history at path. Times are measured from
// start with the monotonic clock.
func Create(path string, start time.Time) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create history: %w", err)
	}
	w := &Writer{f: f, start: start, done: make(chan struct{}), buf: make([]byte, 0, 512)}
	w.wg.Add(1)
	go w.syncLoop()
	return w, nil
}

func (w *Writer) syncLoop() {
	defer w.wg.Done()
	t := time.NewTicker(SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
			w.mu.Lock()
			dirty := w.dirty
			w.dirty = false
			w.mu.Unlock()
			if dirty {
				_ = w.f.Sync() // an error here shows again on Close
			}
		}
	}
}

// Now is the time since the start of the run, in ns, as recorded in ops.
func (w *Writer) Now() int64 { return int64(time.Since(w.start)) }

// Start is the instant times are measured from.
func (w *Writer) Start() time.Time { return w.start }

// Append sets op's schema version, index and, when zero, its time, and writes
// it. It returns the op as written. The first write error is kept and
// returned by every later call: a history that cannot be written ends the run.
func (w *Writer) Append(op Op) (Op, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return op, w.err
	}
	if w.closed {
		return op, fmt.Errorf("history: append after close")
	}
	op.V = SchemaVersion
	op.Index = w.next
	if op.Time == 0 {
		op.Time = int64(time.Since(w.start))
	}
	b, err := op.AppendJSON(w.buf[:0])
	if err != nil {
		w.err = fmt.Errorf("history: encode op %d: %w", op.Index, err)
		return op, w.err
	}
	w.buf = append(b, '\n')
	if _, err := w.f.Write(w.buf); err != nil {
		w.err = fmt.Errorf("history: write: %w", err)
		return op, w.err
	}
	w.next++
	w.dirty = true
	return op, nil
}

// Len is the number of operations written so far.
func (w *Writer) Len() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

// Close fsyncs and closes the file. It returns the first error seen.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return w.err
	}
	w.closed = true
	w.mu.Unlock()
	close(w.done)
	w.wg.Wait()
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if w.err != nil {
		return w.err
	}
	if err != nil {
		return fmt.Errorf("history: close: %w", err)
	}
	return nil
}
