package results

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// Writer appends operations to a history file as they happen. Appends
// collect in memory and a background flusher writes them in one write(2)
// at most FlushDelay after the first of them (at once past maxPending
// bytes), so that clients never wait on the file: each flush ends on a
// line boundary, and the file is always a prefix of the appends in their
// order. A process killed at any moment therefore leaves a history that
// ends at most FlushDelay early, with at most a torn last line; since an
// operation's invoke is appended before the operation is sent, every effect
// the kept lines show has its cause in them. The file is fsynced every
// SyncEvery and on Close.
//
// A Writer is safe for concurrent use: it assigns the index and (unless
// set) the time of every operation in the order of the appends, so the file
// is ordered by index. Times a caller sets itself (a completion's, taken
// when the operation returned) may precede by a few microseconds those of
// lines appended just before: readers must order by Time where real-time
// order matters, never by line.
type Writer struct {
	mu     sync.Mutex // guards the fields below it, up to wmu
	start  time.Time
	next   int64
	buf    []byte // encoded lines not yet written
	err    error
	closed bool

	wmu   sync.Mutex // held while writing; taken before mu
	f     *os.File
	spare []byte // the buffer of the last write, reused
	dirty bool   // written since the last fsync

	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

// SyncEvery is how often the history is fsynced while a run goes on.
const SyncEvery = 50 * time.Millisecond

// FlushDelay is the longest an appended line waits in memory before it is
// written to the file, and so the most a killed harness loses. Each
// window costs a write(2) and two wake-ups of the flusher: at 2 ms, 10 s
// harness runs of register writes spent 45-51 µs of CPU per operation on
// the 2-core machine, at 10 ms 37-45 µs (three runs of each, alternated).
const FlushDelay = 10 * time.Millisecond

// maxPending is the size of unwritten lines past which Append writes them
// itself instead of waiting for the flusher.
const maxPending = 1 << 20

// Create creates (truncating) the history at path. Times are measured from
// start with the monotonic clock.
func Create(path string, start time.Time) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create history: %w", err)
	}
	w := &Writer{f: f, start: start, kick: make(chan struct{}, 1), done: make(chan struct{}),
		buf: make([]byte, 0, 64<<10), spare: make([]byte, 0, 64<<10)}
	w.wg.Add(1)
	go w.flushLoop()
	return w, nil
}

// flushLoop writes what was appended FlushDelay after each first append,
// and fsyncs every SyncEvery when something was written.
func (w *Writer) flushLoop() {
	defer w.wg.Done()
	syncT := time.NewTicker(SyncEvery)
	defer syncT.Stop()
	delay := time.NewTimer(FlushDelay)
	delay.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-w.kick:
			delay.Reset(FlushDelay)
		case <-delay.C:
			w.flush()
		case <-syncT.C:
			w.wmu.Lock()
			if w.dirty {
				w.dirty = false
				_ = w.f.Sync() // an error here shows again on Close
			}
			w.wmu.Unlock()
		}
	}
}

// flush writes every line appended so far in one write. A write error is
// kept: every later Append returns it.
func (w *Writer) flush() {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	b := w.buf
	w.buf = w.spare[:0]
	w.mu.Unlock()
	w.spare = b[:0]
	if len(b) == 0 || w.f == nil {
		return
	}
	if _, err := w.f.Write(b); err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = fmt.Errorf("history: write: %w", err)
		}
		w.mu.Unlock()
		return
	}
	w.dirty = true
}

// Now is the time since the start of the run, in ns, as recorded in ops.
func (w *Writer) Now() int64 { return int64(time.Since(w.start)) }

// Start is the instant times are measured from.
func (w *Writer) Start() time.Time { return w.start }

// Append sets op's schema version, index and, when zero, its time, and
// queues it for the file (see Writer). It returns the op as written. The
// first write error is kept and returned by every later call: a history
// that cannot be written ends the run.
func (w *Writer) Append(op Op) (Op, error) {
	w.mu.Lock()
	if w.err != nil {
		defer w.mu.Unlock()
		return op, w.err
	}
	if w.closed {
		w.mu.Unlock()
		return op, fmt.Errorf("history: append after close")
	}
	op.V = SchemaVersion
	op.Index = w.next
	if op.Time == 0 {
		op.Time = int64(time.Since(w.start))
	}
	was := len(w.buf)
	b, err := op.AppendJSON(w.buf)
	if err != nil {
		w.buf = w.buf[:was]
		w.err = fmt.Errorf("history: encode op %d: %w", op.Index, err)
		w.mu.Unlock()
		return op, w.err
	}
	w.buf = append(b, '\n')
	w.next++
	full := len(w.buf) >= maxPending
	w.mu.Unlock()
	switch {
	case full:
		w.flush()
	case was == 0:
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return op, nil
}

// Len is the number of operations written so far.
func (w *Writer) Len() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

// Close writes what is pending, fsyncs and closes the file. It returns the
// first error seen.
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
	w.flush()
	w.wmu.Lock()
	defer w.wmu.Unlock()
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err != nil {
		return fmt.Errorf("history: close: %w", err)
	}
	return nil
}
