// Package engine is one bucket: the offset space, the write-ahead log, the
// buffer of rows not yet persisted, the flush policy and the directory lock.
// It knows nothing of C or Python; cbridge drives it.
//
// Offsets: rows [0, persisted) live in the sink (the Lance dataset), rows
// [persisted, visible) in the buffer. Both counters only grow, and a flush
// moves rows from buffer to sink in one critical section, so there is no
// instant at which a row is readable from neither.
//
// WAL sequence numbers are a second, private numbering of the same rows: the
// sink stores, in the same commit as the rows, the sequence number up to which
// rows are persisted (the watermark). Recovery replays WAL frames from the
// watermark, so a crash between a sink commit and the WAL truncation
// duplicates nothing. The two numberings differ only when someone else (real
// Lance) added or deleted rows in the dataset.
package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/persisting/persisting/core/codec"
	"github.com/persisting/persisting/core/metrics"
	"github.com/persisting/persisting/core/schema"
	"github.com/persisting/persisting/core/vfs"
	"github.com/persisting/persisting/core/wal"
)

// Sink is where flushed rows go. Append must be atomic: after a crash either
// the whole batch and its watermark are in the sink, or none of it.
type Sink interface {
	// Rows is the number of rows persisted.
	Rows() int64
	// Schema is the persisted table schema, nil when empty.
	Schema() *arrow.Schema
	// Watermark is the WAL sequence number up to which rows are persisted.
	Watermark() uint64
	// Append persists rec as rows [Rows(), Rows()+rec.NumRows()) together
	// with the new watermark.
	Append(rec arrow.RecordBatch, watermark uint64) error
	// Read returns persisted rows [offset, offset+limit).
	Read(offset, limit int64) ([]arrow.RecordBatch, error)
	Close() error
}

// WALConfig turns the write-ahead log on.
type WALConfig struct {
	// SyncInterval 0 fsyncs every group before acknowledging it; otherwise a
	// group is acknowledged once written and fsynced within the interval.
	SyncInterval time.Duration
	// MaxSize: past it the engine flushes so the log can be truncated.
	MaxSize         int64
	SegmentSize     int64
	TruncateCorrupt bool
	// Compression names the codec of frame payloads (core/codec names).
	Compression string
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
	// MaxQueueRows bounds rows waiting for the WAL commit goroutine.
	MaxQueueRows int64
	// OpenSink opens the sink during recovery; nil keeps rows in memory.
	OpenSink func() (Sink, error)
	// WAL, when set, logs every batch before it is acknowledged.
	WAL *WALConfig
	// Metrics receives the bucket's measurements; nil turns them off.
	Metrics *metrics.Bucket
	// Listeners receive the engine's events besides Stats and Metrics.
	Listeners []EventListener
	// Maintenance, when set, compacts and cleans up the sink.
	Maintenance *MaintenanceConfig
	// FS is the filesystem of the WAL; nil means the real one. Tests inject
	// faults through it.
	FS vfs.FS
	// OnSpace is called (from any goroutine) when room frees up after
	// ErrBusy. It must not block.
	OnSpace func()
	Mem     memory.Allocator
}

// Stats is a snapshot of one bucket.
type Stats struct {
	BucketID       int     `json:"bucket_id"`
	Dir            string  `json:"storage_path"`
	Ready          bool    `json:"ready"`
	TotalCount     int64   `json:"total_count"`
	BufferCount    int64   `json:"buffer_count"`
	BufferBytes    int64   `json:"buffer_bytes"`
	PersistedCount int64   `json:"persisted_count"`
	Flushes        int64   `json:"flushes"`
	FlushErrors    int64   `json:"flush_errors"`
	LastFlushError string  `json:"last_flush_error,omitempty"`
	LastFlushSecs  float64 `json:"last_flush_seconds"`
	Backpressure   int64   `json:"backpressure"`
	SchemaChanges  int64   `json:"schema_changes"`
	Columns        int     `json:"columns"`

	WALEnabled      bool   `json:"wal_enabled"`
	WALSize         int64  `json:"wal_size"`
	WALSegments     int    `json:"wal_segments"`
	WALSyncs        int64  `json:"wal_syncs"`
	WALGroups       int64  `json:"wal_groups"`
	WALRecords      int64  `json:"wal_records"`
	WALCodec        string `json:"wal_codec"`
	WALBytesRaw     int64  `json:"wal_bytes_uncompressed"`
	WALBytesStored  int64  `json:"wal_bytes_written"`
	WALError        string `json:"wal_error,omitempty"`
	RecoveredFrames int    `json:"recovered_frames"`
	RecoveredRows   int64  `json:"recovered_rows"`
	TruncatedBytes  int64  `json:"truncated_bytes"`
	TruncatedFile   string `json:"truncated_file,omitempty"`
	DroppedFrames   int    `json:"dropped_frames"`
	// Fragments of the dataset's current version; maintenance runs
	// (compaction and version cleanup) and what they did.
	Fragments          int                `json:"fragments"`
	Maintenances       int64              `json:"maintenances"`
	MaintenanceErrors  int64              `json:"maintenance_errors"`
	LastMaintenanceErr string             `json:"last_maintenance_error,omitempty"`
	LastMaintenance    *MaintenanceResult `json:"last_maintenance,omitempty"`
	FragmentsCompacted int64              `json:"fragments_compacted"`
	VersionsRemoved    int64              `json:"versions_removed"`
	BytesReclaimed     int64              `json:"bytes_reclaimed"`
	// DamagedFiles are what recovery moved or copied into wal/damaged:
	// segments it dropped and tails it cut, kept for an operator to look at.
	DamagedFiles []string `json:"damaged_files,omitempty"`
}

// Engine is one open bucket. All methods are safe for concurrent use.
type Engine struct {
	cfg   Config
	mem   memory.Allocator
	lock  *dirLock
	sink  Sink        // set by recovery before ready closes
	log   *wal.Log    // nil without WAL; used only by the commit goroutine after ready
	codec codec.Codec // of WAL frames

	ready     chan struct{}
	readyErr  error // set before ready closes
	recovered int64 // set before ready closes

	mu sync.Mutex
	// closing: Close has begun; Append refuses from then on, while what was
	// queued before is still committed and flushed. closed: the goroutines
	// are told to stop. closing is set before closed, each once.
	closing bool
	closed  bool
	// broken is an internal error (a recovered panic in one of the
	// engine's goroutines): the bucket refuses writes, Close still works.
	broken error
	// inflight is the group the commit goroutine is working on, so that a
	// panic there can still complete it.
	inflight []queued
	table    *arrow.Schema
	buf      buffer
	seqBase  uint64 // WAL sequence number of buffer row buf.base
	nextSeq  uint64 // sequence number of the next appended row
	queue    []queued
	queued   int64 // rows in queue
	walErr   error // the log failed: every later write is refused
	changed  chan struct{}
	waiters  []flushWaiter // sorted by target
	// lastFlushErr is the error of the last flush, nil after a good one.
	lastFlushErr error
	// flushesSinceMaint counts flushes since the last maintenance run;
	// maintQueue holds the runs someone asked for.
	flushesSinceMaint int
	maintQueue        []maintRequest
	// afterRelease are flush waiters to complete once the log is truncated.
	afterRelease []flushWaiter
	stats        Stats     // the fixed fields; counts come from events
	counts       *counters // the listener that keeps Stats' counters
	listeners    []EventListener
	released     uint64 // watermark the WAL was last truncated to

	// The kick channels are never closed: any goroutine may kick at any
	// time, including during and after Close. quit tells the loops to stop.
	flushKick  chan struct{}
	flushDone  chan struct{}
	commitKick chan struct{}
	commitDone chan struct{}
	maintKick  chan struct{}
	maintDone  chan struct{}
	quit       chan struct{}
	// stopping is cancelled when Close begins: a maintenance run stops.
	stopping  context.Context
	stop      context.CancelFunc
	closeDone chan struct{}
	closeErr  error
}

type flushWaiter struct {
	target int64
	done   func(error)
}

// Open locks dir and starts recovering the bucket in the background: Ready
// is closed when that is done. Appends made earlier wait in the queue.
func Open(cfg Config) (*Engine, error) {
	if cfg.BatchSize <= 0 {
		return nil, fmt.Errorf("%w: batch_size must be positive, got %d", ErrInvalid, cfg.BatchSize)
	}
	if cfg.MaxBufferRows <= 0 {
		cfg.MaxBufferRows = max(16*cfg.BatchSize, 1<<20)
	}
	if cfg.MaxQueueRows <= 0 {
		cfg.MaxQueueRows = 1 << 18
	}
	if cfg.Mem == nil {
		cfg.Mem = memory.DefaultAllocator
	}
	if cfg.OnSpace == nil {
		cfg.OnSpace = func() {}
	}
	if cfg.FS == nil {
		cfg.FS = vfs.Default
	}
	frameCodec := codec.None
	if cfg.WAL != nil {
		c, err := codec.ByName(cfg.WAL.Compression)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		frameCodec = c
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("persisting: create bucket directory: %w", err)
	}
	lk, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:        cfg,
		codec:      frameCodec,
		mem:        cfg.Mem,
		lock:       lk,
		ready:      make(chan struct{}),
		changed:    make(chan struct{}),
		flushKick:  make(chan struct{}, 1),
		flushDone:  make(chan struct{}),
		commitKick: make(chan struct{}, 1),
		commitDone: make(chan struct{}),
		maintKick:  make(chan struct{}, 1),
		maintDone:  make(chan struct{}),
		quit:       make(chan struct{}),
		closeDone:  make(chan struct{}),
	}
	e.stopping, e.stop = context.WithCancel(context.Background())
	e.counts = &counters{}
	e.listeners = append([]EventListener{e.counts, metricsListener{cfg.Metrics}}, cfg.Listeners...)
	e.stats.BucketID = cfg.BucketID
	e.stats.Dir = cfg.Dir
	e.stats.WALEnabled = cfg.WAL != nil
	e.stats.WALCodec = frameCodec.Name()
	go e.run()
	return e, nil
}

// Ready is closed once recovery finished; ReadyErr then tells how.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// ReadyErr is the recovery error, valid after Ready is closed. A bucket
// whose recovery failed refuses everything but Close.
func (e *Engine) ReadyErr() error { return e.readyErr }

// Recovered is the row count recovery found (dataset plus replayed log),
// valid after Ready is closed; appends made since are not in it.
func (e *Engine) Recovered() int64 { return e.recovered }

func (e *Engine) run() {
	e.survive("recovery", func() { e.readyErr = e.recover() })
	if e.readyErr == nil && e.broken != nil {
		e.readyErr = e.broken
	}
	e.recovered = e.buf.end() // before ready closes: no append is visible yet
	close(e.ready)
	go e.flushLoop()
	go e.maintLoop()
	e.commitLoop()
}

// Append copies rec and appends it. With done == nil the rows must become
// visible at once (no WAL, recovery done) or the call fails with ErrBusy;
// otherwise it returns pending=true and done is called, from another
// goroutine, with the first row's offset once the rows are logged (and
// fsynced when the sync interval is 0) and readable.
//
// A batch whose schema cannot be unified with the table's is refused whole
// with a *schema.Error, before anything is queued.
func (e *Engine) Append(rec arrow.RecordBatch, done func(first int64, err error)) (first int64, pending bool, err error) {
	if rec.NumRows() == 0 {
		return 0, false, fmt.Errorf("%w: empty batch", ErrInvalid)
	}
	if err := schema.Validate(rec); err != nil {
		return 0, false, fmt.Errorf("persisting: bucket %s: %w", e.cfg.Dir, err)
	}
	owned, err := deepCopy(rec, e.mem)
	if err != nil {
		return 0, false, err
	}
	defer owned.Release()

	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.writable(); err != nil {
		return 0, false, err
	}
	isReady := e.isReady()
	if e.cfg.WAL == nil && isReady {
		return e.appendVisible(owned)
	}
	if done == nil {
		return 0, false, ErrBusy
	}
	if e.queued >= e.cfg.MaxQueueRows || e.bufferFull() {
		return 0, false, e.backpressure()
	}
	if isReady {
		// Checked now so a bad batch fails alone; the commit goroutine
		// unifies again, in queue order, when it makes the rows visible.
		if _, _, err := schema.Unify(e.table, owned.Schema()); err != nil {
			return 0, false, fmt.Errorf("persisting: bucket %s: %w", e.cfg.Dir, err)
		}
	}
	owned.Retain()
	e.queue = append(e.queue, queued{rec: owned, done: once(done)})
	e.queued += owned.NumRows()
	select {
	case e.commitKick <- struct{}{}:
	default:
	}
	return 0, true, nil
}

func (e *Engine) isReady() bool {
	select {
	case <-e.ready:
		return true
	default:
		return false
	}
}

// writable reports why the bucket cannot take new writes. Called with mu
// held.
func (e *Engine) writable() error {
	if e.closing {
		return ErrClosed
	}
	return e.committable()
}

// committable reports why the bucket cannot commit writes it already took
// (those queued before Close began are still committed). Called with mu
// held.
func (e *Engine) committable() error {
	switch {
	case e.closed:
		return ErrClosed
	case e.broken != nil:
		return e.broken
	case e.walErr != nil:
		return e.walErr
	case e.isReady() && e.readyErr != nil:
		return e.readyErr
	}
	return nil
}

// bufferFull: the buffer reached its bound and a sink could drain it.
// Called with mu held.
func (e *Engine) bufferFull() bool {
	return e.sink != nil && e.buf.rows >= e.cfg.MaxBufferRows
}

// backpressure refuses an append for now (ErrBusy) and gets a flush going.
// When the last flush failed, waiting may be forever: the append fails with
// that error instead, so the caller learns why. Called with mu held.
func (e *Engine) backpressure() error {
	e.emit(func(l EventListener) { l.Backpressure() })
	e.kickFlush()
	if e.bufferFull() && e.lastFlushErr != nil {
		return fmt.Errorf("persisting: bucket %s: the buffer is full (%d rows) and the last flush failed: %v",
			e.cfg.Dir, e.buf.rows, e.lastFlushErr)
	}
	return ErrBusy
}

// appendVisible adds an owned batch to the buffer. Called with mu held.
func (e *Engine) appendVisible(owned arrow.RecordBatch) (int64, bool, error) {
	if e.bufferFull() {
		return 0, false, e.backpressure()
	}
	if err := e.evolve(owned.Schema()); err != nil {
		return 0, false, err
	}
	first, err := e.addToBuffer(owned)
	if err == nil {
		e.nextSeq += uint64(owned.NumRows())
		e.emit(func(l EventListener) { l.Appended(owned.NumRows(), e.buf.rows) })
	}
	return first, false, err
}

// evolve unifies the table schema with an incoming one and conforms the
// buffered batches. Called with mu held.
func (e *Engine) evolve(in *arrow.Schema) error {
	table, changed, err := schema.Unify(e.table, in)
	if err != nil {
		return fmt.Errorf("persisting: bucket %s: %w", e.cfg.Dir, err)
	}
	if !changed {
		return nil
	}
	conform := func(r arrow.RecordBatch) (arrow.RecordBatch, error) { return schema.Conform(r, table, e.mem) }
	if err := e.buf.replace(conform); err != nil {
		return err
	}
	e.table = table
	e.emit(func(l EventListener) { l.SchemaChanged() })
	return nil
}

// addToBuffer makes rows visible. Called with mu held, after evolve.
func (e *Engine) addToBuffer(rec arrow.RecordBatch) (int64, error) {
	conformed, err := schema.Conform(rec, e.table, e.mem)
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
// nonblock, a read that needs the sink (or recovery to finish) fails with
// ErrWouldBlock instead of waiting.
func (e *Engine) Read(offset, limit int64, nonblock bool) ([]arrow.RecordBatch, *arrow.Schema, error) {
	if !e.isReady() {
		if nonblock {
			return nil, nil, ErrWouldBlock
		}
		<-e.ready
	}
	if e.readyErr != nil {
		return nil, nil, e.readyErr
	}
	if offset < 0 {
		return nil, nil, fmt.Errorf("%w: offset %d is negative", ErrInvalid, offset)
	}
	if limit <= 0 {
		return nil, nil, nil
	}
	end := offset + min(limit, math.MaxInt64-offset)
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
		var recs []arrow.RecordBatch
		err := contain("the dataset reader", func() (err error) {
			recs, err = e.sink.Read(offset, min(end, persisted)-offset)
			return err
		})
		if err != nil {
			release()
			return nil, nil, err
		}
		n := int64(0)
		for _, r := range recs {
			n += r.NumRows()
		}
		if n == 0 {
			release()
			return nil, nil, fmt.Errorf("persisting: bucket %s: sink returned no rows at offset %d", e.cfg.Dir, offset)
		}
		offset += n
		out = append(out, recs...)
	}
}

// Flush persists every row visible now; done is called (from another
// goroutine) once they are in the sink, or with the flush error.
func (e *Engine) Flush(done func(error)) {
	e.mu.Lock()
	closing := e.closing
	e.mu.Unlock()
	if closing {
		done(ErrClosed)
		return
	}
	e.flush(done)
}

// flush is Flush without the closing check: Close uses it for its final
// flush.
func (e *Engine) flush(done func(error)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		done(ErrClosed)
		return
	}
	if !e.isReady() {
		// Never wait here: the caller may be the event loop.
		go func() {
			<-e.ready
			e.flush(done)
		}()
		return
	}
	target := e.buf.end()
	if e.sink == nil || target <= e.buf.base {
		done(e.readyErr)
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
	for {
		select {
		case <-e.flushKick:
		case <-e.quit:
			return
		}
		progress := true
		for progress {
			progress = false
			e.survive("the flush loop", func() { progress = e.flushOnce() })
		}
	}
}

// flushOnce writes the whole buffer as one sink append. It reports whether
// it made progress.
func (e *Engine) flushOnce() bool {
	if e.sink == nil || e.readyErr != nil {
		return false
	}
	recs, n, watermark := e.takeFlush()
	if n == 0 {
		return false
	}
	start := time.Now()
	err := e.writeSink(recs, watermark)
	for _, r := range recs {
		r.Release()
	}
	ready := e.finishFlush(n, watermark, time.Since(start), err)
	for _, w := range ready {
		w.done(err)
	}
	if err == nil {
		e.kickCommit()
		e.cfg.OnSpace()
	}
	return err == nil
}

// takeFlush returns the buffered batches to persist, their row count and
// the watermark to commit with them.
func (e *Engine) takeFlush() ([]arrow.RecordBatch, int64, uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.broken != nil || !e.flushWanted() {
		return nil, 0, 0
	}
	recs, n := e.buf.front(e.buf.rows)
	return recs, n, e.seqBase + uint64(n)
}

// finishFlush records a flush's outcome and returns the flush waiters to
// complete now (with a WAL, successful ones complete once the log is
// released, in the commit goroutine).
func (e *Engine) finishFlush(n int64, watermark uint64, took time.Duration, err error) []flushWaiter {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lastFlushErr = err
	var ready []flushWaiter
	if err != nil {
		e.emit(func(l EventListener) { l.FlushDone(n, took, err, e.buf.rows, e.fragments()) })
		ready, e.waiters = e.waiters, nil
		return ready
	}
	e.buf.dropFront(n)
	// Another writer (real Lance) may have committed rows meanwhile: our
	// rows went in after theirs, so the buffer now starts past both.
	if rows := e.sink.Rows(); rows != e.buf.base {
		e.buf.rebase(rows)
	}
	e.seqBase = watermark
	e.maintainDue()
	e.emit(func(l EventListener) { l.FlushDone(n, took, nil, e.buf.rows, e.fragments()) })
	i := 0
	for i < len(e.waiters) && e.waiters[i].target <= e.buf.base {
		i++
	}
	ready, e.waiters = e.waiters[:i:i], e.waiters[i:]
	if e.log != nil {
		// The commit goroutine owns the log: it drops the segments now in
		// the sink, then completes these waiters, so that a flush returns
		// with the log already truncated.
		e.afterRelease = append(e.afterRelease, ready...)
		ready = nil
	}
	return ready
}

// flushWanted: the buffer reached the batch size, someone waits for a
// flush, or the WAL grew past its bound. Called with mu held.
func (e *Engine) flushWanted() bool {
	if e.buf.rows == 0 {
		return false
	}
	if e.buf.rows >= e.cfg.BatchSize || len(e.waiters) > 0 || e.buf.rows >= e.cfg.MaxBufferRows {
		return true
	}
	return e.log != nil && e.cfg.WAL.MaxSize > 0 && e.log.Size() > e.cfg.WAL.MaxSize
}

func (e *Engine) writeSink(recs []arrow.RecordBatch, watermark uint64) error {
	rec, err := concatRecords(recs, e.mem)
	if err != nil {
		return err
	}
	defer rec.Release()
	if err := contain("the dataset writer", func() error { return e.sink.Append(rec, watermark) }); err != nil {
		return fmt.Errorf("persisting: bucket %s: flush: %w", e.cfg.Dir, err)
	}
	return nil
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
	e.counts.fill(&s)
	s.Ready = e.isReady()
	s.TotalCount = e.buf.end()
	s.BufferCount = e.buf.rows
	s.BufferBytes = e.buf.bytes
	s.PersistedCount = e.buf.base
	if e.table != nil {
		s.Columns = e.table.NumFields()
	}
	s.Fragments = e.fragments()
	if s.Ready && e.log != nil {
		s.WALSize = e.log.Size()
		s.WALSegments = e.log.Segments()
	}
	if e.walErr != nil {
		s.WALError = e.walErr.Error()
	}
	return s
}

// Close waits for recovery, refuses new appends, commits what was queued,
// flushes what the sink can take, syncs and closes the WAL and releases the
// directory lock. It is idempotent and safe to call concurrently: later
// calls wait for the first and return nil.
func (e *Engine) Close() error {
	<-e.ready
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		<-e.closeDone
		return nil
	}
	e.closing = true
	e.mu.Unlock()
	e.stop()
	defer close(e.closeDone)
	var flushErr error
	if e.sink != nil && e.readyErr == nil {
		e.drainQueue()
		done := make(chan error, 1)
		e.flush(func(err error) { done <- err })
		flushErr = <-done
	}
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	close(e.quit)
	<-e.flushDone
	<-e.maintDone
	e.failMaintenance()
	<-e.commitDone // fails what is still queued and closes the log
	e.mu.Lock()
	e.buf.release()
	waiters := append(e.waiters, e.afterRelease...)
	e.waiters, e.afterRelease = nil, nil
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
	for _, w := range waiters {
		w.done(ErrClosed)
	}
	var sinkErr error
	if e.sink != nil {
		sinkErr = e.sink.Close()
	}
	e.cfg.Metrics.Unregister()
	e.closeErr = errors.Join(flushErr, sinkErr, e.lock.release())
	return e.closeErr
}

// fragments is the dataset's fragment count (0 for a sink without any).
func (e *Engine) fragments() int {
	if m, ok := e.sink.(Maintainer); ok {
		return m.Fragments()
	}
	return 0
}

// emit reports one event to every listener.
func (e *Engine) emit(event func(EventListener)) {
	for _, l := range e.listeners {
		event(l)
	}
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
