package engine

import (
	"sync"
	"time"

	"github.com/persisting/persisting/core/metrics"
	"github.com/persisting/persisting/core/wal"
)

// EventListener receives the engine's events, in the manner of pebble's
// EventListener: the engine reports each event once, and what follows from
// it (the counters of Stats, the Prometheus series) is a listener's
// business. Methods are called from the engine's goroutines, sometimes with
// the engine's lock held: they must be quick and must not call back into
// the engine.
type EventListener interface {
	// Appended: rows became visible (buffered), the buffer now holds
	// buffered rows.
	Appended(rows, buffered int64)
	// Backpressure: an append was refused for now because the buffer is full.
	Backpressure()
	// SchemaChanged: the table schema evolved.
	SchemaChanged()
	// FlushDone: a flush of rows to the sink ended, with err or not; the
	// buffer now holds buffered rows and the dataset fragments fragments.
	FlushDone(rows int64, took time.Duration, err error, buffered int64, fragments int)
	// WALGroup: a group of appends was written to the log as frames holding
	// rows; raw and stored are payload bytes before and after compression.
	WALGroup(rows, raw, stored int64, codec string, logSize int64)
	// WALSynced: the log was fsynced.
	WALSynced(took time.Duration)
	// WALReleased: segments now in the sink were dropped.
	WALReleased(logSize int64)
	// Recovered: the log was opened; info says what recovery repaired.
	Recovered(info wal.RecoveryInfo)
	// Replayed: one frame of rows was replayed from the log.
	Replayed(rows int64)
	// Corrupt: the log is damaged beyond a torn tail.
	Corrupt()
	// Maintained: a compaction and/or cleanup ran, with err or not; the
	// dataset now has fragments fragments.
	Maintained(res MaintenanceResult, fragments int, err error)
}

// counters is the listener behind Stats.
type counters struct {
	mu sync.Mutex
	s  Stats // only the counters below are kept here
}

func (c *counters) Appended(rows, buffered int64) {}
func (c *counters) WALReleased(int64)             {}
func (c *counters) Corrupt()                      {}

func (c *counters) Backpressure() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.Backpressure++
}

func (c *counters) SchemaChanged() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.SchemaChanges++
}

func (c *counters) FlushDone(rows int64, took time.Duration, err error, buffered int64, fragments int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.s.FlushErrors++
		c.s.LastFlushError = err.Error()
		return
	}
	c.s.Flushes++
	c.s.LastFlushError = ""
	c.s.LastFlushSecs = took.Seconds()
}

func (c *counters) WALGroup(rows, raw, stored int64, codec string, logSize int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.WALGroups++
	c.s.WALRecords += rows
	c.s.WALBytesRaw += raw
	c.s.WALBytesStored += stored
}

func (c *counters) WALSynced(time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.WALSyncs++
}

func (c *counters) Recovered(info wal.RecoveryInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cut := cutBytes(info); cut > 0 {
		c.s.TruncatedBytes = cut
		c.s.TruncatedFile = info.TruncatedFile
	}
	c.s.DroppedFrames = info.DroppedFrames
	c.s.DamagedFiles = info.Evidence
}

func (c *counters) Replayed(rows int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.RecoveredFrames++
	c.s.RecoveredRows += rows
}

func (c *counters) Maintained(res MaintenanceResult, fragments int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.Maintenances++
	if err != nil {
		c.s.MaintenanceErrors++
		c.s.LastMaintenanceErr = err.Error()
		return
	}
	c.s.LastMaintenanceErr = ""
	c.s.LastMaintenance = &res
	if res.Compact != nil {
		c.s.FragmentsCompacted += int64(res.Compact.FragmentsRemoved)
	}
	if res.Cleanup != nil {
		c.s.VersionsRemoved += int64(res.Cleanup.VersionsRemoved)
		c.s.BytesReclaimed += res.Cleanup.BytesReclaimed
	}
}

// cutBytes is what recovery cut that could have held a frame: a tail of
// zeros is unwritten (or preallocated) space, which every crash leaves.
func cutBytes(info wal.RecoveryInfo) int64 {
	if info.ZeroTail {
		return 0
	}
	return info.TruncatedBytes
}

// fill copies the counters into s.
func (c *counters) fill(s *Stats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.s
	s.Flushes, s.FlushErrors, s.LastFlushError, s.LastFlushSecs = k.Flushes, k.FlushErrors, k.LastFlushError, k.LastFlushSecs
	s.Backpressure, s.SchemaChanges = k.Backpressure, k.SchemaChanges
	s.WALSyncs, s.WALGroups, s.WALRecords, s.WALBytesRaw, s.WALBytesStored = k.WALSyncs, k.WALGroups, k.WALRecords, k.WALBytesRaw, k.WALBytesStored
	s.RecoveredFrames, s.RecoveredRows = k.RecoveredFrames, k.RecoveredRows
	s.TruncatedBytes, s.TruncatedFile, s.DroppedFrames, s.DamagedFiles = k.TruncatedBytes, k.TruncatedFile, k.DroppedFrames, k.DamagedFiles
	s.Maintenances, s.MaintenanceErrors, s.LastMaintenanceErr, s.LastMaintenance = k.Maintenances, k.MaintenanceErrors, k.LastMaintenanceErr, k.LastMaintenance
	s.FragmentsCompacted, s.VersionsRemoved, s.BytesReclaimed = k.FragmentsCompacted, k.VersionsRemoved, k.BytesReclaimed
}

// metricsListener reports events into a bucket's Prometheus series; a nil
// bucket (metrics off) ignores them.
type metricsListener struct{ b *metrics.Bucket }

func (m metricsListener) Appended(rows, buffered int64) {
	m.b.AddRecords(int(rows))
	m.b.SetBufferRows(buffered)
}
func (m metricsListener) Backpressure()  { m.b.AddBackpressure() }
func (m metricsListener) SchemaChanged() {}
func (m metricsListener) FlushDone(rows int64, took time.Duration, err error, buffered int64, fragments int) {
	m.b.ObserveFlush(took, err)
	m.b.SetBufferRows(buffered)
	m.b.SetFragments(fragments)
}
func (m metricsListener) WALGroup(rows, raw, stored int64, codec string, logSize int64) {
	m.b.ObserveGroup(int(rows))
	m.b.AddWALBytes(codec, int(raw), int(stored))
	m.b.SetWALSize(logSize)
}
func (m metricsListener) WALSynced(took time.Duration) { m.b.ObserveFsync(took) }
func (m metricsListener) WALReleased(logSize int64)    { m.b.SetWALSize(logSize) }
func (m metricsListener) Recovered(info wal.RecoveryInfo) {
	m.b.AddTruncated(cutBytes(info))
	if info.Corruption != nil {
		m.b.AddCorruption()
	}
}
func (m metricsListener) Replayed(int64) {}
func (m metricsListener) Maintained(res MaintenanceResult, fragments int, err error) {
	var reclaimed int64
	if res.Cleanup != nil {
		reclaimed = res.Cleanup.BytesReclaimed
	}
	m.b.ObserveMaintenance(time.Duration(res.Seconds*float64(time.Second)), reclaimed, fragments, err)
}
func (m metricsListener) Corrupt() { m.b.AddCorruption() }
