package results

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// LagSample is one standby's replication lag as the primary saw it at one
// moment; the harness samples pg_stat_replication during the run and writes
// one JSON line per standby per sample to lag.jsonl.
type LagSample struct {
	// TimeNS is the time of the sample in ns since the run started, on the
	// history's clock (Writer.Now).
	TimeNS int64 `json:"time_ns"`
	// Node is the standby (application_name).
	Node string `json:"node"`
	// Primary is the node the sample was taken on.
	Primary string `json:"primary,omitempty"`
	// LagBytes is pg_current_wal_lsn() - replay_lsn; -1 when unknown.
	LagBytes int64 `json:"lag_bytes"`
	// ReplayLagNS is pg_stat_replication.replay_lag; -1 when NULL.
	ReplayLagNS int64 `json:"replay_lag_ns"`
	// SyncState is pg_stat_replication.sync_state.
	SyncState string `json:"sync_state,omitempty"`
}

// LagWriter appends lag samples to a file, one line per sample, each in one
// write(2). It is safe for concurrent use.
type LagWriter struct {
	mu  sync.Mutex
	f   *os.File
	err error
}

// CreateLag creates (truncating) the lag file at path (Run.Lag).
func CreateLag(path string) (*LagWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create lag file: %w", err)
	}
	return &LagWriter{f: f}, nil
}

// Append writes one sample. The first error is kept and returned again.
func (w *LagWriter) Append(s LagSample) error {
	b, err := json.Marshal(&s)
	if err != nil {
		return fmt.Errorf("lag: encode: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if w.f == nil {
		return fmt.Errorf("lag: append after close")
	}
	if _, err := w.f.Write(append(b, '\n')); err != nil {
		w.err = fmt.Errorf("lag: write: %w", err)
	}
	return w.err
}

// Close fsyncs and closes the file; it returns the first error seen.
func (w *LagWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return w.err
	}
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if w.err == nil && err != nil {
		w.err = fmt.Errorf("lag: close: %w", err)
	}
	return w.err
}

// ReadLagFile reads lag samples from path. Like the history, a torn last
// line (no newline, does not parse) is dropped and reported by torn; any
// other bad line is an error wrapping ErrCorrupt.
func ReadLagFile(path string) (samples []LagSample, torn bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("open lag file: %w", err)
	}
	defer f.Close()
	return ReadLag(f)
}

// ReadLag reads lag samples; see ReadLagFile.
func ReadLag(r io.Reader) (samples []LagSample, torn bool, err error) {
	br := bufio.NewReader(r)
	for line := 1; ; line++ {
		b, rerr := br.ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return nil, false, fmt.Errorf("read lag file: %w", rerr)
		}
		complete := rerr == nil
		b = bytes.TrimSpace(b)
		if len(b) > 0 {
			var s LagSample
			if uerr := json.Unmarshal(b, &s); uerr != nil {
				if !complete {
					return samples, true, nil
				}
				return nil, false, fmt.Errorf("lag file: %w", &CorruptError{Line: line, Reason: uerr.Error()})
			}
			samples = append(samples, s)
		}
		if !complete {
			return samples, false, nil
		}
	}
}
