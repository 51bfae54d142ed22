package engine

import (
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
)

// Read returns rows [offset, offset+limit) in the current table schema. With
// nonblock, a read that needs the sink (or recovery to finish) fails with
// ErrWouldBlock instead of waiting. A limit of 0 returns no rows and the
// table schema (nil before the first row).
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
		e.mu.Lock()
		defer e.mu.Unlock()
		return nil, e.table, nil
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
