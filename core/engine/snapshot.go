package engine

import (
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"

	lance "github.com/persisting/persisting/core/lance/table"
)

// Snapshot is a consistent view of a bucket for searches and scans: the
// dataset version holding the persisted rows and the buffered rows that
// version does not hold. No row is in both and none is missing.
type Snapshot struct {
	// Dataset is the current dataset version; nil before the first flush
	// (or when the sink is not a Lance dataset).
	Dataset *lance.Dataset
	// Buffer holds the buffered rows past Dataset, in the table schema.
	Buffer []arrow.RecordBatch
	// Schema is the table schema (nil when the bucket is empty).
	Schema *arrow.Schema
}

// Release frees the buffered batches.
func (s *Snapshot) Release() {
	for _, r := range s.Buffer {
		r.Release()
	}
	s.Buffer = nil
}

// Snapshot takes a consistent view of the bucket. It waits for recovery.
//
// A flush appends to the sink first and drops the rows from the buffer
// afterwards; in between, the sink's dataset already holds some buffered
// rows. The dataset's watermark (the WAL sequence number its rows reach)
// against the buffer's first sequence number tells how many, so they are
// skipped here.
func (e *Engine) Snapshot() (*Snapshot, error) {
	<-e.ready
	if e.readyErr != nil {
		return nil, e.readyErr
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	var ds *lance.Dataset
	if ls, ok := e.sink.(*LanceSink); ok {
		ds = ls.current()
	}
	skip := int64(0)
	if ds != nil {
		if wm, err := strconv.ParseUint(ds.Config()[WatermarkKey], 10, 64); err == nil && wm > e.seqBase {
			skip = int64(wm - e.seqBase)
		}
	}
	table := e.table
	recs := e.buf.slice(min(e.buf.base+skip, e.buf.end()), e.buf.end())
	e.mu.Unlock()
	conformed, err := conformAll(recs, table, e.mem)
	for _, r := range recs {
		r.Release()
	}
	if err != nil {
		return nil, err
	}
	return &Snapshot{Dataset: ds, Buffer: conformed, Schema: table}, nil
}
