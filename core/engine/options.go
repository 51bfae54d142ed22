package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/persisting/persisting/core/codec"
	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/store"
)

// Options are a bucket's settings as a caller of the C ABI gives them (JSON,
// the names of the Python backend options). ParseOptions is the one place
// where they are checked and where storage policy is decided (the segment
// size, the codec of WAL frames and of Lance pages): the C bridge holds
// none, because its callers are not only persisting's Python package.
type Options struct {
	StoragePath        string   `json:"storage_path"`
	BucketID           int      `json:"bucket_id"`
	BatchSize          int64    `json:"batch_size"`
	MaxBufferRows      int64    `json:"max_buffer_rows"`
	EnableWAL          bool     `json:"enable_wal"`
	WALSyncInterval    *float64 `json:"wal_sync_interval"`
	MaxWALSize         int64    `json:"max_wal_size"`
	WALSegmentSize     int64    `json:"wal_segment_size"`
	WALTruncateCorrupt bool     `json:"wal_truncate_corrupt"`
	Compression        string   `json:"compression"`
	EnableMetrics      bool     `json:"enable_metrics"`
	// Maintenance; nil means the default.
	CompactEvery        *int     `json:"compact_every"`
	CompactTargetRows   int64    `json:"compact_target_rows"`
	KeepVersions        *int     `json:"keep_versions"`
	KeepVersionsSeconds *float64 `json:"keep_versions_seconds"`
	// An object store (storage_path "s3://bucket/prefix/bucket_N"):
	// storage_options are named as pylance's (aws_endpoint, aws_region,
	// aws_access_key_id, aws_secret_access_key, allow_http, ...), over the
	// standard AWS environment and files; wal_location says where the log
	// lives (remote.go, RemoteConfig): "object_store" (the default there)
	// or "local", in local_dir.
	StorageOptions map[string]string `json:"storage_options"`
	WALLocation    string            `json:"wal_location"`
	LocalDir       string            `json:"local_dir"`
}

// WAL locations.
const (
	WALObjectStore = "object_store"
	WALLocal       = "local"
)

// Defaults of the options that have one.
const (
	DefaultWALSyncInterval = time.Second
	DefaultMaxWALSize      = 100 << 20
	// maxSyncInterval: longer would leave acknowledged records unsynced for
	// longer than any deployment means to.
	maxSyncInterval = time.Hour
	// DefaultCompactEvery: compact every 64 flushes, so a dataset has at
	// most about 64 small fragments beside its compacted ones.
	DefaultCompactEvery = 64
	// DefaultKeepVersions: a version is removed once it is not among the
	// newest 100. A count, not an age, bounds disk whatever the flush rate:
	// with compaction every 64 flushes, 100 versions hold the live data plus
	// about one compaction's worth of replaced files (measured: under 2x a
	// single write of the same rows). An age rule (keep_versions_seconds)
	// keeps more for time travel or for slow readers of old versions, at the
	// price of disk that grows with the flush rate.
	DefaultKeepVersions = 100
	// minCompactTarget: compacted fragments grow to at least this many
	// rows (and 16 flushes' worth), at most Lance's default of 2^20: a
	// fragment that reached the target is not rewritten again, which keeps
	// the rewrite cost per row small.
	minCompactTarget = 1 << 16
	// CompactPageBytes: get(limit, offset) decodes the pages holding its
	// rows; compacted fragments are written in pages of 64 KiB, which keeps
	// that cheap once fragments are large while staying large enough for
	// scans. Flushes keep the table layer's default (1 MiB): a large flush
	// is faster in fewer pages, and a small one fits in one page anyway.
	CompactPageBytes = 64 << 10
)

// ParseOptions decodes and checks the JSON options: unknown names, wrong
// JSON types and out-of-range values are errors (ErrInvalid) that name the
// option, never silently replaced by a default.
func ParseOptions(js []byte) (Options, error) {
	var o Options
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return o, fmt.Errorf("%w: options: %v", ErrInvalid, err)
	}
	if dec.More() {
		return o, fmt.Errorf("%w: options: trailing data after the JSON object", ErrInvalid)
	}
	return o, o.check()
}

func (o Options) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
	switch {
	case o.StoragePath == "":
		return bad("storage_path is required")
	case o.BatchSize <= 0:
		return bad("batch_size must be a positive number of rows, got %d", o.BatchSize)
	case o.MaxBufferRows < 0:
		return bad("max_buffer_rows must be positive (0 for the default), got %d", o.MaxBufferRows)
	case o.MaxWALSize < 0:
		return bad("max_wal_size must be a positive number of bytes (0 for the default), got %d", o.MaxWALSize)
	case o.WALSegmentSize < 0:
		return bad("wal_segment_size must be positive (0 for the default), got %d", o.WALSegmentSize)
	}
	if v := o.WALSyncInterval; v != nil {
		if math.IsNaN(*v) || *v < 0 || *v > maxSyncInterval.Seconds() {
			return bad("wal_sync_interval must be between 0 and %g seconds, got %g", maxSyncInterval.Seconds(), *v)
		}
	}
	if err := o.checkRemote(); err != nil {
		return bad("%v", err)
	}
	if _, err := codec.ByName(o.Compression); err != nil {
		return bad("compression: %v", err)
	}
	switch {
	case o.CompactEvery != nil && *o.CompactEvery < 0:
		return bad("compact_every must be a number of flushes >= 0 (0: never automatically), got %d", *o.CompactEvery)
	case o.CompactTargetRows < 0 || o.CompactTargetRows > 1<<32-1:
		return bad("compact_target_rows must be between 1 and 2^32-1 (0 for the default), got %d", o.CompactTargetRows)
	case o.KeepVersions != nil && *o.KeepVersions < 1:
		return bad("keep_versions must be at least 1 (the latest version is always kept), got %d", *o.KeepVersions)
	case o.KeepVersionsSeconds != nil && !(*o.KeepVersionsSeconds >= 0):
		return bad("keep_versions_seconds must be >= 0, got %g", *o.KeepVersionsSeconds)
	}
	return nil
}

// maintenance is the compaction and cleanup policy the options describe.
func (o Options) maintenance() *MaintenanceConfig {
	m := &MaintenanceConfig{CompactEvery: DefaultCompactEvery}
	if o.CompactEvery != nil {
		m.CompactEvery = *o.CompactEvery
	}
	m.Compact.TargetRows = o.CompactTargetRows
	if m.Compact.TargetRows == 0 {
		m.Compact.TargetRows = min(max(minCompactTarget, 16*o.BatchSize), lance.DefaultCompactTargetRows)
	}
	m.Cleanup.KeepLast = DefaultKeepVersions
	if o.KeepVersions != nil {
		m.Cleanup.KeepLast = *o.KeepVersions
	}
	if o.KeepVersionsSeconds != nil {
		// 0 means no age rule, as in Cleanup: versions go by count only.
		m.Cleanup.OlderThan = time.Duration(*o.KeepVersionsSeconds * float64(time.Second))
	}
	return m
}

// Dir is the bucket directory, or its URI on an object store.
func (o Options) Dir() string {
	if store.IsURI(o.StoragePath) {
		return strings.TrimRight(o.StoragePath, "/")
	}
	return filepath.Clean(o.StoragePath)
}

// Config is the engine configuration the options describe, with a Lance
// sink at {dir}/data.lance; onSink receives the sink once recovery opened
// it.
func (o Options) Config(onSink func(*LanceSink)) Config {
	dir := o.Dir()
	// Flushes compress as Lance's writer does (strings and binary): they
	// are on the write path. Compaction, in the background, compresses
	// every buffer (LanceSink.Compact), as an LSM tree compresses its
	// bottom level harder than the levels it writes first.
	page := lance.Options{Compression: lancePageCodec(o.Compression), CompressVarWidthOnly: true}
	cfg := Config{
		Dir:           dir,
		BucketID:      o.BucketID,
		BatchSize:     o.BatchSize,
		MaxBufferRows: o.MaxBufferRows,
		Maintenance:   o.maintenance(),
	}
	remoteLog := o.remote(&cfg, &page)
	cfg.OpenSink = func() (Sink, error) {
		sink, err := OpenLanceSink(dir, page)
		if err == nil && onSink != nil {
			onSink(sink)
		}
		return sink, err
	}
	if o.EnableWAL {
		interval := DefaultWALSyncInterval
		if remoteLog {
			// On the object store a group is acknowledged once it is an
			// object there, unless an interval is asked for explicitly.
			interval = 0
		}
		if o.WALSyncInterval != nil {
			interval = time.Duration(*o.WALSyncInterval * float64(time.Second))
		}
		maxSize := o.MaxWALSize
		if maxSize == 0 {
			maxSize = DefaultMaxWALSize
		}
		cfg.WAL = &WALConfig{
			SyncInterval:    interval,
			MaxSize:         maxSize,
			SegmentSize:     segmentSize(o.WALSegmentSize, maxSize),
			TruncateCorrupt: o.WALTruncateCorrupt,
			Compression:     o.Compression,
		}
	}
	return cfg
}

// segmentSize keeps segments small against max_wal_size: the log shrinks
// by whole segments, so a segment as large as the bound would let the log
// reach twice the bound before a flush could release anything.
func segmentSize(given, maxWAL int64) int64 {
	if given > 0 {
		return given
	}
	return min(max(maxWAL/4, 4<<10), 64<<20)
}

// lancePageCodec is the Lance page compression for a compression option.
// Lance has no snappy page scheme, so snappy pages are written with zstd.
func lancePageCodec(name string) string {
	switch name {
	case "zstd", "lz4":
		return name
	case "snappy":
		return "zstd"
	}
	return ""
}

// PageCodec is the codec name of Lance pages for a compression option
// ("none" when uncompressed); stats report it.
func PageCodec(compression string) string {
	if c := lancePageCodec(compression); c != "" {
		return c
	}
	return "none"
}
