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
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/persisting/persisting/core/codec"
	"github.com/persisting/persisting/core/metrics"
	"github.com/persisting/persisting/core/vfs"
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
	// WaitBeforeLock, when set, is called at the start of recovery, and
	// the directory is locked after it (a lock failure is then the
	// recovery's error) instead of in Open: for a directory whose previous
	// bucket in this process is still closing, so Open never waits.
	WaitBeforeLock func()
	// FS is the filesystem of the WAL; nil means the real one. Tests inject
	// faults through it.
	FS vfs.FS
	// Remote is set for a bucket on an object store (Dir is its URI).
	Remote *RemoteConfig
	// OnSpace is called (from any goroutine) after every flush, successful
	// or not, so that appends refused with ErrBusy retry. It must not block.
	OnSpace func()
	Mem     memory.Allocator
}

// Engine is one open bucket. All methods are safe for concurrent use.
type Engine struct {
	cfg    Config
	mem    memory.Allocator
	lock   *dirLock
	sink   Sink         // set by recovery before ready closes
	log    walLog       // nil without WAL; used only by the commit goroutine after ready
	codec  codec.Codec  // of WAL frames
	frames frameEncoder // used by the commit goroutine only

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
	var lk *dirLock
	if cfg.WaitBeforeLock == nil {
		l, err := mkdirLock(&cfg)
		if err != nil {
			return nil, err
		}
		lk = l
	} else if dir := cfg.lockTarget(); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("persisting: create bucket directory: %w", err)
		}
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

// lockLate takes the directory lock in recovery when Open did not.
func (e *Engine) lockLate() error {
	if e.lock != nil || e.cfg.WaitBeforeLock == nil {
		return nil
	}
	e.cfg.WaitBeforeLock()
	lk, err := mkdirLock(&e.cfg)
	if err != nil {
		return err
	}
	e.lock = lk
	return nil
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
	e.survive("recovery", func() {
		if e.readyErr = e.lockLate(); e.readyErr == nil {
			e.readyErr = e.recover()
		}
	})
	if e.readyErr == nil && e.broken != nil {
		e.readyErr = e.broken
	}
	e.recovered = e.buf.end() // before ready closes: no append is visible yet
	close(e.ready)
	go e.flushLoop()
	go e.maintLoop()
	e.commitLoop()
}

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
