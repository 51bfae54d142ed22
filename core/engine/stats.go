package engine

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
