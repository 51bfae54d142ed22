// Package engine is one bucket: the offset space, the buffer of rows not yet
// persisted, the flush policy and the directory lock. It knows nothing of C
// or Python; cbridge drives it.
//
// Offsets: rows [0, persisted) live in the sink (the Lance dataset), rows
// [persisted, visible) in the buffer. Both counters only grow, and a flush
// moves rows from buffer to sink in one critical section, so there is no
// instant at which a row is readable from neither.
package engine

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/persisting/persisting/core/schema"
)

// Sink is where flushed rows go. Append must be atomic: after a crash either
// the whole batch and its watermark are in the sink, or none of it.
type Sink interface {
	// Rows is the number of rows persisted.
	Rows() int64
	// Schema is the persisted table schema, nil when empty.
	Schema() *arrow.Schema
	// Append persists rec as rows [Rows(), Rows()+rec.NumRows()).
	Append(rec arrow.RecordBatch) error
	// Read returns persisted rows [offset, offset+limit).
	Read(offset, limit int64) ([]arrow.RecordBatch, error)
	Close() error
}

// Config is one bucket's configuration.
type Config struct {
	Dir      string
	BucketID int
	// BatchSize is the buffered row count that triggers a flush.
	BatchSize int64
	// MaxBufferRows bounds the buffer when a sink can drain it: past it,
	// Append refuses with ErrBusy until a flush frees room.
	MaxBufferRows int64
	// Sink receives flushed rows; nil keeps everything in memory.
	Sink Sink
	// OnSpace is called (from any goroutine) when room frees up after
	// ErrBusy. It must not block.
	OnSpace func()
	Mem     memory.Allocator
}

// Stats is a snapshot of one bucket.
type Stats struct {
	BucketID       int    `json:"bucket_id"`
	Dir            string `json:"storage_path"`
	TotalCount     int64  `json:"total_count"`
	BufferCount    int64  `json:"buffer_count"`
	BufferBytes    int64  `json:"buffer_bytes"`
	PersistedCount int64  `json:"persisted_count"`
	Flushes        int64  `json:"flushes"`
	FlushErrors    int64  `json:"flush_errors"`
	LastFlushError string `json:"last_flush_error,omitempty"`
	Backpressure   int64  `json:"backpressure"`
	SchemaChanges  int64  `json:"schema_changes"`
	Columns        int    `json:"columns"`
}

// Engine is one open bucket. All methods are safe for concurrent use.
type Engine struct {
	cfg  Config
	mem  memory.Allocator
	lock *dirLock

	mu        sync.Mutex
	closed    bool
	table     *arrow.Schema
	buf       buffer
	changed   chan struct{} // closed and replaced whenever visible grows
	waiters   []flushWaiter // sorted by target
	flushErr  error         // last flush failure, cleared by a success
	stats     Stats
	flushKick chan struct{}
	flushDone chan struct{}
}

type flushWaiter struct {
	target int64
	done   func(error)
}

// Open locks dir and opens the bucket in it.
func Open(cfg Config) (*Engine, error) {
	if cfg.BatchSize <= 0 {
		return nil, fmt.Errorf("%w: batch_size must be positive, got %d", ErrInvalid, cfg.BatchSize)
	}
	if cfg.MaxBufferRows <= 0 {
		cfg.MaxBufferRows = max(16*cfg.BatchSize, 1<<20)
	}
	if cfg.Mem == nil {
		cfg.Mem = memory.DefaultAllocator
	}
	if cfg.OnSpace == nil {
		cfg.OnSpace = func() {}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create bucket directory: %w", err)
	}
	lk, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:       cfg,
		mem:       cfg.Mem,
		lock:      lk,
		changed:   make(chan struct{}),
		flushKick: make(chan struct{}, 1),
		flushDone: make(chan struct{}),
	}
	e.stats.BucketID = cfg.BucketID
	e.stats.Dir = cfg.Dir
	if cfg.Sink != nil {
		e.buf.base = cfg.Sink.Rows()
		e.table = cfg.Sink.Schema()
	}
	go e.flushLoop()
	return e, nil
}

// Append copies rec into the buffer and returns the offset of its first row.
// The rows are readable when it returns. A batch whose schema cannot be
// unified with the table's is refused whole with a *schema.Error.
func (e *Engine) Append(rec arrow.RecordBatch) (int64, error) {
	if rec.NumRows() == 0 {
		return 0, fmt.Errorf("%w: empty batch", ErrInvalid)
	}
	owned, err := deepCopy(rec, e.mem)
	if err != nil {
		return 0, err
	}
	defer owned.Release()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 0, ErrClosed
	}
	if e.cfg.Sink != nil && e.buf.rows >= e.cfg.MaxBufferRows {
		e.stats.Backpressure++
		e.kickFlush()
		return 0, ErrBusy
	}
	table, changed, err := schema.Unify(e.table, owned.Schema())
	if err != nil {
		return 0, fmt.Errorf("persisting: bucket %s: %w", e.cfg.Dir, err)
	}
	if changed {
		conform := func(r arrow.RecordBatch) (arrow.RecordBatch, error) { return schema.Conform(r, table, e.mem) }
		if err := e.buf.replace(conform); err != nil {
			return 0, err
		}
		e.table = table
		e.stats.SchemaChanges++
	}
	conformed, err := schema.Conform(owned, e.table, e.mem)
	if err != nil {
		return 0, err
	}
	first := e.buf.end()
	e.buf.add(conformed)
	close(e.changed)
	e.changed = make(chan struct{})
	if e.buf.rows >= e.cfg.BatchSize {
		e.kickFlush()
	}
	return first, nil
}

// Changed returns a channel closed when more rows become visible.
func (e *Engine) Changed() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}

// Read returns rows [offset, offset+limit) in the current table schema. With
// nonblock, a read that needs the sink fails with ErrWouldBlock instead.
func (e *Engine) Read(offset, limit int64, nonblock bool) ([]arrow.RecordBatch, *arrow.Schema, error) {
	if offset < 0 || limit <= 0 {
		return nil, nil, nil
	}
	end := offset + limit
	var out []arrow.RecordBatch
	release := func() {
		for _, r := range out {
			r.Release()
		}
	}
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			release()
			return nil, nil, ErrClosed
		}
		table := e.table
		end = min(end, e.buf.end())
		if offset >= e.buf.base || offset >= end {
			out = append(out, e.buf.slice(max(offset, e.buf.base), end)...)
			e.mu.Unlock()
			conformed, err := conformAll(out, table, e.mem)
			release()
			return conformed, table, err
		}
		persisted := e.buf.base
		e.mu.Unlock()
		if nonblock {
			release()
			return nil, nil, ErrWouldBlock
		}
		// The sink only grows, so rows below persisted stay where they are.
		recs, err := e.cfg.Sink.Read(offset, min(end, persisted)-offset)
		if err != nil {
			release()
			return nil, nil, err
		}
		for _, r := range recs {
			offset += r.NumRows()
		}
		out = append(out, recs...)
	}
}

// Flush persists every row visible now; done is called (from another
// goroutine) once they are in the sink, or with the flush error.
func (e *Engine) Flush(done func(error)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		done(ErrClosed)
		return
	}
	target := e.buf.end()
	if e.cfg.Sink == nil || target <= e.buf.base {
		done(nil)
		return
	}
	i := len(e.waiters)
	for i > 0 && e.waiters[i-1].target > target {
		i--
	}
	e.waiters = append(e.waiters, flushWaiter{})
	copy(e.waiters[i+1:], e.waiters[i:])
	e.waiters[i] = flushWaiter{target: target, done: done}
	e.kickFlush()
}

func (e *Engine) kickFlush() {
	select {
	case e.flushKick <- struct{}{}:
	default:
	}
}

// flushLoop is the only writer of the sink.
func (e *Engine) flushLoop() {
	defer close(e.flushDone)
	for range e.flushKick {
		for e.flushOnce() {
		}
	}
}

// flushOnce writes the whole buffer as one sink append. It reports whether
// it made progress.
func (e *Engine) flushOnce() bool {
	if e.cfg.Sink == nil {
		return false
	}
	e.mu.Lock()
	recs, n := e.buf.front(e.buf.rows)
	e.mu.Unlock()
	if n == 0 {
		return false
	}
	start := time.Now()
	err := e.writeSink(recs)
	for _, r := range recs {
		r.Release()
	}
	_ = start
	e.mu.Lock()
	var ready []flushWaiter
	if err != nil {
		e.stats.FlushErrors++
		e.stats.LastFlushError = err.Error()
		ready, e.waiters = e.waiters, nil
	} else {
		e.stats.Flushes++
		e.stats.LastFlushError = ""
		e.buf.dropFront(n)
		i := 0
		for i < len(e.waiters) && e.waiters[i].target <= e.buf.base {
			i++
		}
		ready, e.waiters = e.waiters[:i:i], e.waiters[i:]
	}
	e.flushErr = err
	e.mu.Unlock()
	for _, w := range ready {
		w.done(err)
	}
	if err == nil {
		e.cfg.OnSpace()
	}
	return err == nil
}

func (e *Engine) writeSink(recs []arrow.RecordBatch) error {
	rec, err := concatRecords(recs, e.mem)
	if err != nil {
		return err
	}
	defer rec.Release()
	return e.cfg.Sink.Append(rec)
}

// TotalCount is the number of visible rows.
func (e *Engine) TotalCount() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.buf.end()
}

// Stats returns a snapshot.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.TotalCount = e.buf.end()
	s.BufferCount = e.buf.rows
	s.BufferBytes = e.buf.bytes
	s.PersistedCount = e.buf.base
	if e.table != nil {
		s.Columns = e.table.NumFields()
	}
	return s
}

// Close flushes what the sink can take, stops the flusher and releases the
// directory lock. It is idempotent.
func (e *Engine) Close() error {
	var flushErr error
	if e.cfg.Sink != nil {
		done := make(chan error, 1)
		e.Flush(func(err error) { done <- err })
		flushErr = <-done
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.flushKick)
	e.mu.Unlock()
	<-e.flushDone
	e.mu.Lock()
	e.buf.release()
	waiters := e.waiters
	e.waiters = nil
	close(e.changed)
	e.mu.Unlock()
	for _, w := range waiters {
		w.done(ErrClosed)
	}
	var sinkErr error
	if e.cfg.Sink != nil {
		sinkErr = e.cfg.Sink.Close()
	}
	return errors.Join(flushErr, sinkErr, e.lock.release())
}

// deepCopy copies rec into memory owned by mem, so that the producer's
// buffers (Python's, for imported batches) can be released at once.
func deepCopy(rec arrow.RecordBatch, mem memory.Allocator) (arrow.RecordBatch, error) {
	st := array.RecordToStructArray(rec)
	defer st.Release()
	cp, err := array.Concatenate([]arrow.Array{st}, mem)
	if err != nil {
		return nil, fmt.Errorf("copy batch: %w", err)
	}
	defer cp.Release()
	return array.RecordFromStructArray(cp.(*array.Struct), rec.Schema()), nil
}

func concatRecords(recs []arrow.RecordBatch, mem memory.Allocator) (arrow.RecordBatch, error) {
	if len(recs) == 1 {
		recs[0].Retain()
		return recs[0], nil
	}
	parts := make([]arrow.Array, len(recs))
	for i, r := range recs {
		parts[i] = array.RecordToStructArray(r)
		defer parts[i].Release()
	}
	cat, err := array.Concatenate(parts, mem)
	if err != nil {
		return nil, fmt.Errorf("concatenate batches: %w", err)
	}
	defer cat.Release()
	return array.RecordFromStructArray(cat.(*array.Struct), recs[0].Schema()), nil
}

func conformAll(recs []arrow.RecordBatch, table *arrow.Schema, mem memory.Allocator) ([]arrow.RecordBatch, error) {
	out := make([]arrow.RecordBatch, 0, len(recs))
	for _, r := range recs {
		c, err := schema.Conform(r, table, mem)
		if err != nil {
			for _, o := range out {
				o.Release()
			}
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
