package engine

import (
	"bytes"
	"fmt"
	"runtime"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/persisting/persisting/core/codec"
	"github.com/persisting/persisting/core/wal"
)

// queued is an append waiting for the commit goroutine.
type queued struct {
	rec  arrow.RecordBatch // owned copy, in the schema it was written with
	seq  uint64            // WAL sequence number of its first row
	done func(first int64, err error)
}

func (e *Engine) kickCommit() { kick(e.commitKick) }

// commitLoop is the only user of the WAL after recovery. Each round takes
// every queued append (a group), writes one frame per append, fsyncs once
// when the sync interval is 0, then makes the rows visible and completes
// them in queue order. Group commit falls out of this: appends that arrive
// while a round fsyncs form the next group.
func (e *Engine) commitLoop() {
	defer close(e.commitDone)
	var tick <-chan time.Time
	if e.log != nil && e.cfg.WAL.SyncInterval > 0 {
		t := time.NewTicker(e.cfg.WAL.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	dirty := false
	var spin spinner
	for {
		if spin.wait(e.commitKick) {
			goto commit
		}
		select {
		case <-e.commitKick:
			spin.woken()
		case <-e.quit:
			e.survive("the log shutdown", e.shutdownLog)
			return
		case <-tick:
			if dirty {
				e.survive("the log sync", func() { e.syncLog() })
				dirty = false
			}
			continue
		}
	commit:
		e.survive("the commit loop", func() {
			if e.commitQueue() && e.log != nil && e.cfg.WAL.SyncInterval > 0 {
				dirty = true
			}
			e.releaseLog()
		})
		spin.done()
	}
}

// spinWindow is how long the commit goroutine looks for the next append
// before it parks, when appends have been coming that quickly. Waking a
// parked goroutine from the caller's thread costs tens of microseconds on
// a virtual machine (a futex wake-up of an idle thread), as long as a whole
// append takes otherwise: a producer awaiting each put, whose next append
// arrives right after its completion, pays it on every put. Spinning
// briefly takes its next append without that wake-up; a bucket whose
// appends come further apart never spins, so an idle bucket costs nothing.
const spinWindow = 150 * time.Microsecond

// spinner decides whether the commit goroutine spins before parking: only
// when the last append arrived within spinWindow of the group before it.
type spinner struct {
	idleSince time.Time // end of the last group
	spin      bool      // the last gap was short
}

func (s *spinner) done() { s.idleSince = time.Now() }

// woken records that a parked wait ended with an append.
func (s *spinner) woken() { s.spin = !s.idleSince.IsZero() && time.Since(s.idleSince) < spinWindow }

// wait spins up to spinWindow for a kick when the last gap was short; it
// reports whether one came (consumed).
func (s *spinner) wait(kick chan struct{}) bool {
	if !s.spin {
		return false
	}
	deadline := s.idleSince.Add(spinWindow)
	for time.Now().Before(deadline) {
		select {
		case <-kick:
			return true
		default:
			runtime.Gosched()
		}
	}
	s.spin = false
	return false
}

// drainQueue commits everything queued now; Close uses it before its final
// flush so that acknowledged rows are in the buffer.
func (e *Engine) drainQueue() {
	done := make(chan struct{})
	e.mu.Lock()
	if len(e.queue) == 0 || e.closed {
		e.mu.Unlock()
		return
	}
	last := e.queue[len(e.queue)-1].done
	e.queue[len(e.queue)-1].done = func(first int64, err error) {
		last(first, err)
		close(done)
	}
	e.mu.Unlock()
	e.kickCommit()
	<-done
}

// commitQueue commits one group; it reports whether it wrote to the log.
//
// Schemas are unified here, in queue order and before logging, so that a
// logged frame is always one the table accepted: replay unifies the same
// frames in the same order and reaches the same table. Sequence numbers are
// handed out here too, to accepted appends only, so they stay contiguous.
func (e *Engine) commitQueue() bool {
	group, accepted, errs := e.takeGroup()
	if len(group) == 0 {
		return false
	}
	var err error
	if e.log != nil && len(accepted) > 0 {
		err = e.logGroup(accepted)
	}
	firsts := e.showGroup(group, errs, err)
	e.mu.Lock()
	e.inflight = nil
	e.mu.Unlock()
	for i, q := range group {
		q.rec.Release()
		q.done(firsts[i], errs[i])
	}
	return err == nil && e.log != nil && len(accepted) > 0
}

// takeGroup moves the queue into inflight, unifies each append's schema in
// queue order and numbers the accepted ones. errs[i] is set for refused
// appends.
func (e *Engine) takeGroup() (group, accepted []queued, errs []error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	group = e.queue
	e.queue = nil
	e.queued = 0
	e.inflight = group
	errs = make([]error, len(group))
	for i := range group {
		q := &group[i]
		if errs[i] = e.committable(); errs[i] == nil {
			errs[i] = e.evolve(q.rec.Schema())
		}
		if errs[i] == nil {
			q.seq = e.nextSeq
			e.nextSeq += uint64(q.rec.NumRows())
			accepted = append(accepted, *q)
		}
	}
	return group, accepted, errs
}

// showGroup makes the logged appends of a group visible; logErr is the
// failure of the log write, which every accepted append then reports.
func (e *Engine) showGroup(group []queued, errs []error, logErr error) []int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if logErr != nil && e.walErr == nil {
		e.walErr = logErr
	}
	firsts := make([]int64, len(group))
	for i, q := range group {
		if errs[i] != nil {
			continue
		}
		if logErr != nil {
			errs[i] = logErr
			continue
		}
		firsts[i], errs[i] = e.addToBuffer(q.rec)
		if errs[i] == nil {
			e.emit(func(l EventListener) { l.Appended(q.rec.NumRows(), e.buf.rows) })
		}
	}
	return firsts
}

// logGroup writes one frame per append and fsyncs when asked to. A failure
// poisons the bucket for writes: an fsync is never retried.
func (e *Engine) logGroup(group []queued) error {
	var rows, raw, stored int64
	for _, q := range group {
		var payload []byte
		var n int
		err := contain("WAL frame encoding", func() (err error) {
			payload, n, err = e.frames.encode(q.rec, e.codec)
			return err
		})
		if err != nil {
			return fmt.Errorf("%w: encode frame: %v", ErrWAL, err)
		}
		frame := wal.Frame{FirstOffset: q.seq, Rows: uint32(q.rec.NumRows()), Payload: payload}
		if _, err := e.log.Append(frame); err != nil {
			return e.logError("", err)
		}
		rows += q.rec.NumRows()
		raw += int64(n)
		stored += int64(len(payload))
	}
	if e.cfg.WAL.SyncInterval == 0 {
		if err := e.syncLog(); err != nil {
			return err
		}
	}
	size := e.log.Size()
	e.emit(func(l EventListener) { l.WALGroup(rows, raw, stored, e.codec.Name(), size) })
	if e.cfg.WAL.MaxSize > 0 && e.log.Size() > e.cfg.WAL.MaxSize {
		e.kickFlush()
	}
	return nil
}

func (e *Engine) syncLog() error {
	start := time.Now()
	err := e.log.Sync()
	if err == nil {
		took := time.Since(start)
		e.emit(func(l EventListener) { l.WALSynced(took) })
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		werr := e.logError("", err)
		if e.walErr == nil {
			e.walErr = werr
		}
		return werr
	}
	return nil
}

// releaseLog drops segments whose rows are all in the sink, then completes
// the flushes waiting for that. A failed release leaves the segments for the
// next round; the rows are safe in the sink either way.
func (e *Engine) releaseLog() {
	if e.log == nil {
		return
	}
	e.mu.Lock()
	wm := e.seqBase
	waiters := e.afterRelease
	e.afterRelease = nil
	e.mu.Unlock()
	if wm > e.released {
		if err := e.log.ReleaseBefore(wm); err == nil {
			e.released = wm
		}
		size := e.log.Size()
		e.emit(func(l EventListener) { l.WALReleased(size) })
	}
	for _, w := range waiters {
		w.done(nil)
	}
}

// shutdownLog fails what is still queued and closes the log (which syncs).
func (e *Engine) shutdownLog() {
	e.mu.Lock()
	inflight, queue := e.inflight, e.queue
	e.queue, e.inflight = nil, nil
	e.mu.Unlock()
	for _, q := range inflight { // only after a recovered panic
		q.done(0, ErrClosed)
	}
	for _, q := range queue {
		q.rec.Release()
		q.done(0, ErrClosed)
	}
	if e.log != nil {
		e.releaseLog()
		e.log.Close()
	}
}

// frameEncoder serializes batches as WAL payloads. A payload is a whole
// Arrow IPC stream (schema message, record batch message, end of stream), so
// replay needs nothing but the frame and any bucket configuration decodes it;
// the schema message of a table that keeps its schema is serialized once and
// reused. Used by the commit goroutine only.
type frameEncoder struct {
	schema *arrow.Schema
	head   []byte // the schema message of schema, as written in a stream
}

// ipcEndOfStream is the end-of-stream marker: continuation token, length 0.
var ipcEndOfStream = []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}

// encode returns the compressed payload of rec and its uncompressed size;
// the codec framing names the codec.
func (f *frameEncoder) encode(rec arrow.RecordBatch, c codec.Codec) (payload []byte, raw int, err error) {
	if f.schema == nil || (f.schema != rec.Schema() && !f.schema.Equal(rec.Schema())) {
		var head bytes.Buffer
		sp := ipc.GetSchemaPayload(rec.Schema(), memory.DefaultAllocator)
		_, err := sp.WritePayload(&head)
		sp.Release()
		if err != nil {
			return nil, 0, err
		}
		f.schema, f.head = rec.Schema(), head.Bytes()
	}
	var buf bytes.Buffer
	buf.Write(f.head)
	bp, err := ipc.GetRecordBatchPayload(rec)
	if err != nil {
		return nil, 0, err
	}
	_, err = bp.WritePayload(&buf)
	bp.Release()
	if err != nil {
		return nil, 0, err
	}
	buf.Write(ipcEndOfStream)
	payload, err = c.Encode(nil, buf.Bytes())
	return payload, buf.Len(), err
}

func decodeFrame(payload []byte) (arrow.RecordBatch, error) {
	data, err := codec.Decode(payload)
	if err != nil {
		return nil, err
	}
	r, err := ipc.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer r.Release()
	if !r.Next() {
		if err := r.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("frame holds no batch")
	}
	rec := r.RecordBatch()
	rec.Retain()
	return rec, nil
}
