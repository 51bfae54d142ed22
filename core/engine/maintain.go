package engine

import (
	"context"
	"fmt"
	"time"

	lance "github.com/persisting/persisting/core/lance/table"
)

// MaintenanceConfig turns on compaction and version cleanup: one fragment and
// one version per flush is right for durability and wrong for a queue that
// runs for months (disk grows with the square of the flush count, and so
// does the cost of every flush).
type MaintenanceConfig struct {
	// CompactEvery: after this many flushes, compact and then clean up, in
	// the maintenance goroutine, beside flushes (a flush commits over a
	// compaction and the other way round, as Lance's writers do). 0: only
	// when asked (Engine.Maintain).
	CompactEvery int
	Compact      lance.CompactOptions
	// Cleanup keeps the latest version always; the engine's WAL watermark
	// lives in it.
	Cleanup lance.CleanupOptions
}

// Maintainer is a Sink that can compact and clean up (LanceSink).
type Maintainer interface {
	Compact(ctx context.Context, co lance.CompactOptions) (CompactInfo, error)
	Cleanup(ctx context.Context, co lance.CleanupOptions) (CleanupInfo, error)
	Fragments() int
}

// CompactInfo says what one compaction did.
type CompactInfo struct {
	Version          uint64 `json:"version"` // 0: nothing to compact
	FragmentsRemoved int    `json:"fragments_removed"`
	FragmentsAdded   int    `json:"fragments_added"`
	Fragments        int    `json:"fragments"` // after it
	RowsRewritten    int64  `json:"rows_rewritten"`
	BytesRead        int64  `json:"bytes_read"`
	BytesWritten     int64  `json:"bytes_written"`
}

// CleanupInfo says what one version cleanup did.
type CleanupInfo struct {
	VersionsRemoved int   `json:"versions_removed"`
	VersionsKept    int   `json:"versions_kept"`
	FilesRemoved    int   `json:"files_removed"`
	BytesReclaimed  int64 `json:"bytes_reclaimed"`
}

// MaintenanceResult is one run of Maintain.
type MaintenanceResult struct {
	Compact *CompactInfo `json:"compact,omitempty"`
	Cleanup *CleanupInfo `json:"cleanup,omitempty"`
	Seconds float64      `json:"seconds"`
}

// maintRequest is a maintenance run someone waits for.
type maintRequest struct {
	compact, cleanup bool
	done             func(MaintenanceResult, error)
}

// Maintain compacts and/or cleans up now, in the maintenance goroutine;
// done is called from that goroutine. Without a sink that can (no
// dataset), done gets a zero result.
func (e *Engine) Maintain(compact, cleanup bool, done func(MaintenanceResult, error)) {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		done(MaintenanceResult{}, ErrClosed)
		return
	}
	e.maintQueue = append(e.maintQueue, maintRequest{compact: compact, cleanup: cleanup, done: done})
	e.mu.Unlock()
	kick(e.maintKick)
}

// maintLoop runs maintenance when asked or due, one run at a time, until
// Close; Close cancels a run in progress (compaction stops between
// fragments and leaves nothing behind).
func (e *Engine) maintLoop() {
	defer close(e.maintDone)
	for {
		select {
		case <-e.maintKick:
		case <-e.quit:
			return
		}
		e.survive("maintenance", e.maintain)
	}
}

// maintainDue kicks the maintenance goroutine when enough flushes passed.
// Called with mu held, after a flush.
func (e *Engine) maintainDue() {
	e.flushesSinceMaint++
	if m := e.cfg.Maintenance; m != nil && m.CompactEvery > 0 && e.flushesSinceMaint >= m.CompactEvery {
		kick(e.maintKick)
	}
}

// maintain runs the requested maintenance and the automatic one that is
// due. Called from the maintenance goroutine only.
func (e *Engine) maintain() {
	m, ok := e.sink.(Maintainer)
	e.mu.Lock()
	reqs := e.maintQueue
	e.maintQueue = nil
	auto := e.cfg.Maintenance != nil && e.cfg.Maintenance.CompactEvery > 0 &&
		e.flushesSinceMaint >= e.cfg.Maintenance.CompactEvery
	e.mu.Unlock()
	compact, cleanup := auto, auto
	for _, r := range reqs {
		compact, cleanup = compact || r.compact, cleanup || r.cleanup
	}
	if !compact && !cleanup {
		return
	}
	var res MaintenanceResult
	var err error
	e.mu.Lock()
	e.flushesSinceMaint = 0
	e.mu.Unlock()
	if ok && e.readyErr == nil {
		res, err = e.runMaintenance(m, compact, cleanup)
	}
	for _, r := range reqs {
		r.done(res, err)
	}
}

func (e *Engine) runMaintenance(m Maintainer, compact, cleanup bool) (MaintenanceResult, error) {
	cfg := MaintenanceConfig{}
	if e.cfg.Maintenance != nil {
		cfg = *e.cfg.Maintenance
	}
	start := time.Now()
	var res MaintenanceResult
	err := contain("maintenance", func() error {
		if compact {
			info, err := m.Compact(e.stopping, cfg.Compact)
			if err != nil {
				return fmt.Errorf("persisting: bucket %s: compact: %w", e.cfg.Dir, err)
			}
			res.Compact = &info
		}
		if cleanup {
			info, err := m.Cleanup(e.stopping, cfg.Cleanup)
			if err != nil {
				return fmt.Errorf("persisting: bucket %s: clean up versions: %w", e.cfg.Dir, err)
			}
			res.Cleanup = &info
		}
		return nil
	})
	res.Seconds = time.Since(start).Seconds()
	fragments := e.fragments()
	e.emit(func(l EventListener) { l.Maintained(res, fragments, err) })
	return res, err
}

// failMaintenance completes the maintenance still queued at Close.
func (e *Engine) failMaintenance() {
	e.mu.Lock()
	reqs := e.maintQueue
	e.maintQueue = nil
	e.mu.Unlock()
	for _, r := range reqs {
		r.done(MaintenanceResult{}, ErrClosed)
	}
}
