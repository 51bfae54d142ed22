package table

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/persisting/persisting/core/lance/encoding"
	"github.com/persisting/persisting/core/lance/file"
)

// rewrite reads the live rows of one group's fragments, in order, and
// writes them as one new data file; only this group is in memory.
func (c *compactor) rewrite(d *Dataset, g *rewriteGroup) error {
	recs, err := c.readGroup(d, g)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	if err != nil {
		return err
	}
	if g.live == 0 {
		return nil // every row deleted: the group has no new fragment
	}
	top := d.schema.Top
	cols := make([]arrow.Array, len(top))
	defer func() {
		for _, a := range cols {
			if a != nil {
				a.Release()
			}
		}
	}()
	for i := range top {
		parts := make([]arrow.Array, len(recs))
		for j, r := range recs {
			parts[j] = r.Column(i)
		}
		a, err := array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			return fmt.Errorf("lance: %s: compact column %q: %w", c.path, top[i].Name, err)
		}
		cols[i] = a
	}
	// The rows live on in cols: free the fragments' batches before writing.
	for _, r := range recs {
		r.Release()
	}
	recs = nil
	return c.writeGroup(g, top, cols)
}

// readGroup reads the live rows of each fragment of the group (nothing of
// a fragment without any), counting the bytes read and the deleted rows
// dropped. The batches read before an error are returned with it.
func (c *compactor) readGroup(d *Dataset, g *rewriteGroup) ([]arrow.RecordBatch, error) {
	var recs []arrow.RecordBatch
	byID := map[uint64]*fragState{}
	for i := range d.frags {
		byID[d.frags[i].f.id] = &d.frags[i]
	}
	for _, fr := range g.old {
		if err := c.ctx.Err(); err != nil {
			return recs, err
		}
		st := byID[fr.id]
		s := sizeOf(st)
		c.res.DeletedRowsDropped += s.physical - s.live
		c.throttle(s.bytes)
		c.res.BytesRead += s.bytes
		if st.live == 0 {
			continue
		}
		rec, err := d.readFragment(st, 0, st.live)
		if err != nil {
			return recs, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// writeGroup writes the group's rows (cols) as one new data file and makes
// it the group's new fragment.
func (c *compactor) writeGroup(g *rewriteGroup, top []*encoding.Field, cols []arrow.Array) error {
	if err := c.st.MkdirAll(dataDir); err != nil {
		return fmt.Errorf("lance: create %s: %w", filepath.Join(c.path, dataDir), err)
	}
	name := newDataFileName()
	full := filepath.Join(c.path, dataDir, name)
	w, err := c.st.Create(dataName(name))
	if err != nil {
		return fmt.Errorf("lance: create %s: %w", full, err)
	}
	size, err := file.Write(w, full, top, cols, int(g.live),
		file.WriteOptions{Compression: c.opts.Compression, MaxPageBytes: c.opts.MaxPageBytes, VarWidthOnly: c.opts.CompressVarWidthOnly})
	if err != nil {
		w.Abort()
		return err
	}
	if err := w.Commit(); err != nil {
		return fmt.Errorf("lance: %w", err)
	}
	c.written = append(c.written, name)
	ids := idsOf(top)
	g.new = &fragment{physicalRows: uint64(g.live), files: []dataFile{{
		path: name, fields: ids, columns: columnsOf(ids),
		major: dataFileMajor20, minor: dataFileMinor20, size: size,
	}}}
	c.res.BytesWritten += int64(size)
	c.res.RowsWritten += g.live
	c.res.FilesAdded++
	c.throttle(int64(size))
	return nil
}

// throttle sleeps so that the bytes moved so far stay under BytesPerSecond.
func (c *compactor) throttle(n int64) {
	if c.co.BytesPerSecond <= 0 {
		return
	}
	c.io += n
	due := time.Duration(float64(c.io) / float64(c.co.BytesPerSecond) * float64(time.Second))
	if wait := due - time.Since(c.start); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.ctx.Done():
		}
	}
}
