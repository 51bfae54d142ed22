package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/persisting/persisting/core/engine"
	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/metrics"
)

// bucketConfig is the JSON the Python side passes to persisting_open.
type bucketConfig struct {
	StoragePath        string  `json:"storage_path"`
	BucketID           int     `json:"bucket_id"`
	BatchSize          int64   `json:"batch_size"`
	MaxBufferRows      int64   `json:"max_buffer_rows"`
	EnableWAL          bool    `json:"enable_wal"`
	WALSyncInterval    float64 `json:"wal_sync_interval"`
	MaxWALSize         int64   `json:"max_wal_size"`
	WALSegmentSize     int64   `json:"wal_segment_size"`
	WALTruncateCorrupt bool    `json:"wal_truncate_corrupt"`
	Compression        string  `json:"compression"`
	EnableMetrics      bool    `json:"enable_metrics"`
}

// readyToken is the completion token of the end of recovery.
const readyToken = 0

// completion is one finished asynchronous operation, keyed by the token the
// caller chose.
type completion struct {
	token  uint64
	status int32
	first  int64
	err    string
}

// bucket is what a handle points at: an engine plus the completion queue the
// Python event loop drains. Go never calls into Python; it queues a
// completion and bumps the eventfd, and the loop polls.
type bucket struct {
	eng  *engine.Engine
	sink *engine.LanceSink // set during recovery
	efd  int

	mu      sync.Mutex
	done    []completion
	failed  map[uint64]string // error text of failed tokens, taken once
	efdOpen bool
}

func openBucket(cfgJSON string) (*bucket, error) {
	var cfg bucketConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		return nil, fmt.Errorf("%w: config: %v", engine.ErrInvalid, err)
	}
	if cfg.StoragePath == "" {
		return nil, fmt.Errorf("%w: storage_path is required", engine.ErrInvalid)
	}
	efd, err := newEventFD()
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	b := &bucket{efd: efd, efdOpen: true, failed: map[uint64]string{}}
	dir := filepath.Clean(cfg.StoragePath)
	ecfg := engine.Config{
		Dir:           dir,
		BucketID:      cfg.BucketID,
		BatchSize:     cfg.BatchSize,
		MaxBufferRows: cfg.MaxBufferRows,
		OnSpace:       b.signal,
		OpenSink: func() (engine.Sink, error) {
			sink, err := engine.OpenLanceSink(dir, lance.Options{Compression: lancePageCodec(cfg.Compression)})
			if err == nil {
				b.sink = sink
			}
			return sink, err
		},
	}
	if cfg.EnableMetrics {
		ecfg.Metrics = metrics.Default().Bucket(dir)
	}
	if cfg.EnableWAL {
		ecfg.WAL = &engine.WALConfig{
			SyncInterval:    time.Duration(cfg.WALSyncInterval * float64(time.Second)),
			MaxSize:         cfg.MaxWALSize,
			SegmentSize:     segmentSize(cfg),
			TruncateCorrupt: cfg.WALTruncateCorrupt,
			Compression:     walCodec(cfg.Compression),
		}
	}
	eng, err := engine.Open(ecfg)
	if err != nil {
		ecfg.Metrics.Unregister()
		syscall.Close(efd)
		return nil, err
	}
	b.eng = eng
	go func() {
		<-eng.Ready()
		b.complete(readyToken, eng.Recovered(), eng.ReadyErr())
	}()
	return b, nil
}

// segmentSize keeps segments small against max_wal_size: the log shrinks
// by whole segments, so a segment as large as the bound would let the log
// reach twice the bound before a flush could release anything.
func segmentSize(cfg bucketConfig) int64 {
	if cfg.WALSegmentSize > 0 {
		return cfg.WALSegmentSize
	}
	if cfg.MaxWALSize > 0 {
		return min(max(cfg.MaxWALSize/4, 4<<10), 64<<20)
	}
	return 0
}

// lancePageCodec is the Lance page compression for a compression option.
// Lance has no snappy page scheme, so snappy pages are written with zstd.
func lancePageCodec(codec string) string {
	switch codec {
	case "zstd", "lz4":
		return codec
	case "snappy":
		return "zstd"
	}
	return ""
}

// walCodec is the WAL frame compression for a compression option: all
// three codecs apply to frames.
func walCodec(codec string) string {
	if codec == "none" {
		return ""
	}
	return codec
}

// complete queues a finished operation and wakes the loop.
func (b *bucket) complete(token uint64, first int64, err error) {
	c := completion{token: token, first: first}
	if err != nil {
		c.status, c.err = statusOf(err), err.Error()
	}
	b.mu.Lock()
	b.done = append(b.done, c)
	b.mu.Unlock()
	b.signal()
}

// signal bumps the eventfd; eventfd counters coalesce, so a burst of
// completions costs the loop one wake-up.
func (b *bucket) signal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.efdOpen {
		var one = [8]byte{1}
		_, _ = syscall.Write(b.efd, one[:])
	}
}

// poll moves up to len(tokens) completions out.
func (b *bucket) poll(tokens []uint64, status []int32, first []int64) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(tokens), len(b.done))
	for i, c := range b.done[:n] {
		tokens[i], status[i], first[i] = c.token, c.status, c.first
		if c.err != "" {
			b.failed[c.token] = c.err
		}
	}
	b.done = append(b.done[:0], b.done[n:]...)
	return n
}

func (b *bucket) takeError(token uint64) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	msg := b.failed[token]
	delete(b.failed, token)
	return msg
}

func (b *bucket) close() error {
	err := b.eng.Close()
	b.mu.Lock()
	if b.efdOpen {
		b.efdOpen = false
		syscall.Close(b.efd)
	}
	b.mu.Unlock()
	return err
}

func newEventFD() (int, error) {
	const efdCloexec, efdNonblock = 0x80000, 0x800
	fd, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, efdCloexec|efdNonblock, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}
