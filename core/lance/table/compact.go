package table

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/persisting/persisting/core/store"
)

// Compaction (§13.6): runs of adjacent small fragments are rewritten as
// fewer, larger fragments and committed as Lance's own Rewrite transaction,
// what pylance's dataset.optimize.compact_files() commits.

// Defaults of CompactOptions; TargetRows and the deletion threshold are
// Lance's (CompactionOptions::default).
const (
	DefaultCompactTargetRows        = 1 << 20
	DefaultCompactTargetBytes       = 128 << 20
	DefaultMaterializeDeletionsFrac = 0.1
)

// CompactOptions tune Compact. The zero value means Lance's defaults.
type CompactOptions struct {
	// TargetRows: a fragment with fewer physical rows is a candidate for
	// merging with its neighbours, and a new fragment holds at most this
	// many rows. 0 means DefaultCompactTargetRows (1,048,576, as Lance).
	TargetRows int64
	// TargetBytes caps a new fragment by the bytes of the data files it is
	// made from (their live share); a fragment whose files are this large
	// is not a candidate. It also bounds the memory of one rewrite group,
	// which is decoded whole before it is written. 0 means
	// DefaultCompactTargetBytes (128 MiB); negative means no cap.
	TargetBytes int64
	// MaterializeDeletionsThreshold: a fragment with a larger fraction of
	// deleted rows is rewritten even when it has no small neighbours
	// (Lance's materialize_deletions_threshold). 0 means 0.1; 1 or more
	// never rewrites a fragment alone.
	MaterializeDeletionsThreshold float64
	// MaxGroups bounds the rewrite groups (runs of old fragments that
	// become one new fragment) of one call; 0 means no bound. A long-lived
	// queue can compact a little at a time.
	MaxGroups int
	// BytesPerSecond throttles the I/O of the rewrite (bytes of data files
	// read plus bytes written); 0 means unthrottled.
	BytesPerSecond int64
}

func (o CompactOptions) normalize() (CompactOptions, error) {
	if o.TargetRows == 0 {
		o.TargetRows = DefaultCompactTargetRows
	}
	if o.TargetBytes == 0 {
		o.TargetBytes = DefaultCompactTargetBytes
	}
	if o.MaterializeDeletionsThreshold == 0 {
		o.MaterializeDeletionsThreshold = DefaultMaterializeDeletionsFrac
	}
	if o.TargetRows < 0 || o.TargetRows > 1<<32-1 {
		return o, fmt.Errorf("lance: compact: TargetRows %d out of range (1..2^32-1: row offsets are u32)", o.TargetRows)
	}
	if o.MaxGroups < 0 || o.BytesPerSecond < 0 || o.MaterializeDeletionsThreshold < 0 {
		return o, fmt.Errorf("lance: compact: negative option in %+v", o)
	}
	return o, nil
}

// CompactResult says what a Compact did.
type CompactResult struct {
	// Dataset is the version committed, or the latest version when there
	// was nothing to compact (Version 0).
	Dataset *Dataset
	// Version is the version the Rewrite was committed as (0: none);
	// ReadVersion the version it was planned on. Version > ReadVersion+1
	// when other writers committed in between and we rebased.
	Version, ReadVersion uint64
	Groups               int   // rewrite groups committed
	FragmentsRemoved     int   // old fragments replaced
	FragmentsAdded       int   // new fragments
	FilesRemoved         int   // data and deletion files the new version no longer references
	FilesAdded           int   // data files written
	RowsWritten          int64 // live rows rewritten
	DeletedRowsDropped   int64 // deleted rows materialized away
	BytesRead            int64 // bytes of the old data files
	BytesWritten         int64 // bytes of the new data files
	SkippedIndexed       int   // candidate fragments left alone because an index covers them
}

// Compact merges runs of adjacent small fragments of the latest version of
// the dataset at path into fragments of about co.TargetRows rows and commits
// one Rewrite transaction (one RewriteGroup per run), as Lance's
// compact_files does:
//
//   - Order: a group replaces a contiguous run of fragments, in place, by one
//     new fragment holding their live rows in the same order, so the live
//     offset of every row in the dataset is unchanged (rows are addressed by
//     position over fragments in manifest order). Deletion vectors are
//     applied: deleted rows are dropped, as Lance drops them. Row addresses
//     (fragment id << 32 | offset) change, as with Lance.
//   - Candidates: fragments with fewer than TargetRows physical rows (and
//     data files under TargetBytes) merge with candidate neighbours; a
//     fragment with more than MaterializeDeletionsThreshold deleted rows is
//     rewritten even alone; a fragment with no live rows is dropped.
//   - Indices: fragments covered by an index (its fragment bitmap; an index
//     without one covers everything) are never rewritten. Lance remaps the
//     index instead (rewritten_indices), which means rewriting index files;
//     we keep the index valid by not touching its fragments, and it stays
//     usable, with our new fragments unindexed like appended ones.
//   - Everything else of the manifest is carried forward: schema, config
//     (e.g. the engine's WAL watermark), schema and table metadata, the
//     index section, unknown fields.
//   - Crash safety: new data files are written and made durable before the
//     manifest is committed with an atomic create-if-not-exists; on any
//     failure before the commit they are removed, and after a crash they
//     are unreferenced files that Cleanup removes once past its grace.
//   - Bounded work: one group is decoded, written and released at a time,
//     so memory is bounded by one new fragment (TargetRows, TargetBytes);
//     BytesPerSecond throttles I/O; MaxGroups bounds one call; ctx cancels
//     between fragments.
//   - Concurrency: when another writer commits first, Compact reloads the
//     latest version and rebases onto it when the versions in between only
//     appended, reserved fragment ids, changed config, or deleted from,
//     rewrote or indexed fragments other than ours (Lance's rule for
//     Rewrite); an overwrite, restore, schema change, a change to one of
//     our fragments, an index now covering one, an unknown operation or a
//     version without a transaction returns a *ConflictError, and the new
//     files are removed. Nothing is lost by a conflict: run Compact again.
func Compact(ctx context.Context, path string, co CompactOptions, opts Options) (*CompactResult, error) {
	co, err := co.normalize()
	if err != nil {
		return nil, err
	}
	if opts, err = opts.normalize(); err != nil {
		return nil, err
	}
	c := &compactor{ctx: ctx, path: path, co: co, opts: opts, st: opts.store(path), start: time.Now()}
	res, err := c.run()
	if err != nil {
		c.removeWritten()
		return nil, err
	}
	return res, nil
}

type compactor struct {
	ctx   context.Context
	path  string
	co    CompactOptions
	opts  Options
	st    store.Store
	res   CompactResult
	start time.Time
	io    int64 // bytes read and written, for the throttle
	// groups are the planned groups; their new fragments once written.
	groups []*rewriteGroup
	// written are the data files written and not (yet) committed.
	written []string
}

// rewriteGroup is one RewriteGroup: a contiguous run of old fragments and
// the fragment (none when every row was deleted) that replaces them.
type rewriteGroup struct {
	old  []*fragment
	live int64
	new  *fragment // id assigned when the manifest is built
}

func (c *compactor) removeWritten() {
	for _, name := range c.written {
		c.st.Remove(dataName(name))
	}
	c.written = nil
}

func (c *compactor) run() (*CompactResult, error) {
	versions, n, err := listVersionNumbers(c.st)
	if err != nil {
		return nil, err
	}
	m, err := readManifest(c.st, n, versions[len(versions)-1])
	if err != nil {
		return nil, err
	}
	if err := m.checkWritable(); err != nil {
		return nil, fmt.Errorf("lance: %s: %w", c.path, err)
	}
	d, err := load(c.path, c.opts, n, m)
	if err != nil {
		return nil, err
	}
	c.res.ReadVersion = m.version
	if err := c.plan(d); err != nil {
		return nil, err
	}
	if len(c.groups) == 0 {
		c.res.Dataset = d
		return &c.res, nil
	}
	for _, g := range c.groups {
		if err := c.rewrite(d, g); err != nil {
			return nil, err
		}
	}
	if len(c.written) > 0 {
		if err := c.st.SyncDir(dataDir); err != nil {
			return nil, fmt.Errorf("lance: sync %s: %w", filepath.Join(c.path, dataDir), err)
		}
	}
	return c.commit(m, n)
}

// fragSize is the planning view of one fragment.
type fragSize struct {
	physical, live int64
	bytes          int64 // live share of the data files' bytes
}

func sizeOf(st *fragState) fragSize {
	s := fragSize{physical: int64(st.f.physicalRows), live: st.live}
	var b uint64
	for _, df := range st.f.files {
		b += df.size
	}
	if s.physical > 0 {
		s.bytes = int64(float64(b) * float64(s.live) / float64(s.physical))
	}
	return s
}

// plan groups the fragments of d as Lance's plan_compaction does, except
// that a group is cut before it would exceed TargetRows live rows or
// TargetBytes, so that each group becomes exactly one new fragment.
func (c *compactor) plan(d *Dataset) error {
	indexed, err := d.m.indexedFragments()
	if err != nil {
		return err
	}
	var cur *rewriteGroup
	var curBytes int64
	worth := false // cur merges fragments or materializes deletions
	flush := func() {
		if cur != nil && (worth || len(cur.old) > 1) {
			c.groups = append(c.groups, cur)
		}
		cur, curBytes, worth = nil, 0, false
	}
	for i := range d.frags {
		if c.co.MaxGroups > 0 && len(c.groups) >= c.co.MaxGroups {
			break
		}
		st := &d.frags[i]
		s := sizeOf(st)
		itself := s.live == 0 ||
			float64(s.physical-s.live) > c.co.MaterializeDeletionsThreshold*float64(s.physical)
		small := s.physical < c.co.TargetRows && (c.co.TargetBytes < 0 || s.bytes < c.co.TargetBytes)
		if !itself && !small {
			flush()
			continue
		}
		if indexed[st.f.id] {
			c.res.SkippedIndexed++
			flush()
			continue
		}
		fits := cur != nil && cur.live+s.live <= c.co.TargetRows &&
			(c.co.TargetBytes < 0 || curBytes+s.bytes <= c.co.TargetBytes)
		if !fits {
			flush()
			cur = &rewriteGroup{}
		}
		cur.old = append(cur.old, st.f)
		cur.live += s.live
		curBytes += s.bytes
		worth = worth || itself
	}
	if c.co.MaxGroups == 0 || len(c.groups) < c.co.MaxGroups {
		flush()
	}
	return nil
}
