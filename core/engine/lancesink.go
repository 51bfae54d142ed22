package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"

	lance "github.com/persisting/persisting/core/lance/table"
)

// WatermarkKey is the manifest config key holding the WAL sequence number up
// to which rows are in the dataset. It is committed in the same manifest as
// the fragment holding those rows.
const WatermarkKey = "persisting.wal_watermark"

// DatasetName is the Lance dataset inside a bucket directory.
const DatasetName = "data.lance"

// LanceSink persists flushed rows as one fragment and one version per flush.
type LanceSink struct {
	path string
	opts lance.Options

	mu sync.Mutex
	ds *lance.Dataset // nil until the first flush creates the dataset
	// fence, set by Fence, makes every append check that no newer owner
	// took the dataset (remote_options.go).
	fence *sinkFence
	// unsettled is the watermark of the last append if its commit outcome
	// was uncertain (lance.ErrCommitUncertain: the manifest may be in
	// place), 0 otherwise. Used by the flush goroutine only.
	unsettled uint64
}

// OpenLanceSink opens {dir}/data.lance, which may not exist yet.
func OpenLanceSink(dir string, opts lance.Options) (*LanceSink, error) {
	s := &LanceSink{path: datasetPath(dir), opts: opts}
	ds, err := lance.Open(s.path, opts)
	switch {
	case err == nil:
		s.ds = ds
	case errors.Is(err, os.ErrNotExist):
	default:
		return nil, err
	}
	return s, nil
}

func (s *LanceSink) current() *lance.Dataset {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ds
}

// Path is the dataset directory.
func (s *LanceSink) Path() string { return s.path }

// Version is the dataset version, 0 before the first flush.
func (s *LanceSink) Version() uint64 {
	if ds := s.current(); ds != nil {
		return ds.Version()
	}
	return 0
}

func (s *LanceSink) Rows() int64 {
	if ds := s.current(); ds != nil {
		return ds.CountRows()
	}
	return 0
}

func (s *LanceSink) Schema() *arrow.Schema {
	if ds := s.current(); ds != nil {
		return ds.Schema()
	}
	return nil
}

func (s *LanceSink) Watermark() uint64 {
	ds := s.current()
	if ds == nil {
		return 0
	}
	return watermarkOf(ds)
}

func watermarkOf(ds *lance.Dataset) uint64 {
	v, ok := ds.Config()[WatermarkKey]
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// Append commits rec as rows up to watermark: rec holds the rows of WAL
// sequence numbers [watermark-len(rec), watermark). After an append whose
// commit was uncertain, the dataset says whether that commit landed (its
// watermark is then ours), and the rows it stored are not appended again:
// the engine retries a failed flush with the same rows first.
func (s *LanceSink) Append(rec arrow.RecordBatch, watermark uint64) error {
	if s.unsettled != 0 {
		if err := s.settle(); err != nil {
			return err
		}
		start := watermark - uint64(rec.NumRows())
		if done := s.Watermark(); done > start && done <= watermark {
			if done == watermark {
				return nil // all stored by the commit thought uncertain
			}
			rec = rec.NewSlice(int64(done-start), rec.NumRows())
			defer rec.Release()
		}
	}
	opts := s.opts
	// A dataset that existed and is gone was deleted under us: appending
	// would start a new one at row 0 and lose the offsets of the old.
	opts.MustExist = s.current() != nil
	ds, err := lance.Append(s.path, rec, map[string]string{WatermarkKey: strconv.FormatUint(watermark, 10)}, opts)
	if errors.Is(err, lance.ErrNoDataset) {
		return fmt.Errorf("the dataset %s was deleted while the bucket was open; reopen the bucket", s.path)
	}
	if errors.Is(err, lance.ErrCommitUncertain) {
		s.unsettled = watermark
	}
	if err != nil {
		return err
	}
	s.fenced(watermark)
	s.mu.Lock()
	if s.ds == nil || ds.Version() > s.ds.Version() {
		s.ds = ds
	}
	s.mu.Unlock()
	return nil
}

// settle learns from the newest version whether the uncertain commit of
// rows up to s.unsettled landed, and takes that version as current.
func (s *LanceSink) settle() error {
	ds, err := lance.Open(s.path, s.opts)
	if errors.Is(err, os.ErrNotExist) && s.current() == nil {
		s.unsettled = 0 // the commit that would have created it did not land
		return nil
	}
	if err != nil {
		return fmt.Errorf("learn whether the commit of rows up to sequence %d landed: %w", s.unsettled, err)
	}
	if wm := watermarkOf(ds); wm == s.unsettled {
		s.fenced(wm) // it landed
	}
	s.unsettled = 0
	s.mu.Lock()
	if s.ds == nil || ds.Version() > s.ds.Version() {
		s.ds = ds
	}
	s.mu.Unlock()
	return nil
}

func (s *LanceSink) Read(offset, limit int64) ([]arrow.RecordBatch, error) {
	ds := s.current()
	if ds == nil {
		return nil, fmt.Errorf("read rows %d..%d: the dataset %s does not exist", offset, offset+limit, s.path)
	}
	return ds.ReadRange(offset, limit)
}

func (s *LanceSink) Close() error { return nil }

// Fragments is the fragment count of the current version, 0 before the
// first flush.
func (s *LanceSink) Fragments() int {
	if ds := s.current(); ds != nil {
		return ds.Fragments()
	}
	return 0
}

// Compact merges small fragments (table.Compact) and makes the result the
// current version unless a flush committed a newer one meanwhile (which then
// holds the compaction too: its commit rebased over it). Rows keep their
// offsets, so the engine's offset space is untouched.
func (s *LanceSink) Compact(ctx context.Context, co lance.CompactOptions) (CompactInfo, error) {
	if s.current() == nil {
		return CompactInfo{}, nil
	}
	opts := s.opts
	opts.MaxPageBytes = CompactPageBytes
	opts.CompressVarWidthOnly = false // every buffer: see Options.Config
	res, err := lance.Compact(ctx, s.path, co, opts)
	if err != nil {
		return CompactInfo{}, err
	}
	s.mu.Lock()
	if s.ds == nil || res.Dataset.Version() > s.ds.Version() {
		s.ds = res.Dataset
	}
	s.mu.Unlock()
	return CompactInfo{
		Version: res.Version, FragmentsRemoved: res.FragmentsRemoved, FragmentsAdded: res.FragmentsAdded,
		RowsRewritten: res.RowsWritten, BytesRead: res.BytesRead, BytesWritten: res.BytesWritten,
		Fragments: res.Dataset.Fragments(),
	}, nil
}

// Cleanup removes old versions and the files no kept version refers to
// (table.Cleanup); the current version is never removed.
func (s *LanceSink) Cleanup(ctx context.Context, co lance.CleanupOptions) (CleanupInfo, error) {
	if s.current() == nil {
		return CleanupInfo{}, nil
	}
	st, err := lance.Cleanup(ctx, s.path, co, s.opts)
	if err != nil {
		return CleanupInfo{}, err
	}
	return CleanupInfo{VersionsRemoved: st.VersionsRemoved, FilesRemoved: st.FilesRemoved, BytesReclaimed: st.BytesRemoved, VersionsKept: len(st.Kept)}, nil
}
