package table

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/persisting/persisting/core/lance/encoding"
	"github.com/persisting/persisting/core/lance/file"
	"github.com/persisting/persisting/core/store"
)

// ensureFile writes the data file for the plan, unless the file written for
// an earlier attempt already carries the same field ids.
func (a *appender) ensureFile(p *appendPlan, creating bool) error {
	if err := a.waitFile(); err != nil {
		return err
	}
	if a.file != nil && slices.Equal(a.file.ids, p.fileIDs) {
		return nil
	}
	if a.file != nil {
		a.st.Remove(dataName(a.file.name)) // never referenced
		a.file = nil
	}
	if a.rec.NumRows() == 0 {
		return nil
	}
	dir := filepath.Join(a.path, dataDir)
	if err := a.st.MkdirAll(dataDir); err != nil {
		return fmt.Errorf("lance: create %s: %w", dir, err)
	}
	if creating {
		// Make the dataset directory itself durable before anything in it
		// is committed.
		if err := a.st.SyncRoot(); err != nil {
			return fmt.Errorf("lance: sync %s: %w", a.path, err)
		}
	}
	name := newDataFileName()
	size, w, err := a.writeDataBytes(dataName(name), p.top, p.cols, int(a.rec.NumRows()))
	if err != nil {
		return err
	}
	// The file and its directory entry are made durable in the background
	// while the manifest and transaction are built and written; the commit
	// waits for them (waitFile) before it puts the manifest.
	a.file = &writtenFile{name: name, ids: p.fileIDs, size: size}
	a.syncing = make(chan error, 1)
	go func() {
		if err := w.Commit(); err != nil {
			a.syncing <- fmt.Errorf("lance: %w", err)
			return
		}
		if err := a.st.SyncDir(dataDir); err != nil {
			a.st.Remove(dataName(name))
			a.syncing <- fmt.Errorf("lance: sync %s: %w", dir, err)
			return
		}
		a.syncing <- nil
	}()
	return nil
}

// waitFile waits for the background sync of the data file, if one is
// running, and reports its outcome; after a failure the file is gone.
func (a *appender) waitFile() error {
	if a.syncing == nil {
		return nil
	}
	err := <-a.syncing
	a.syncing = nil
	if err != nil {
		a.file = nil
	}
	return err
}

// dataName is the store name of a data file.
func dataName(file string) string { return path.Join(dataDir, file) }

// newDataFileName is a fresh data file name: any unique name works for
// Lance (§2), and a UUID's hex is unique.
func newDataFileName() string {
	return strings.ReplaceAll(newUUID(), "-", "") + ".lance"
}

// writeDataFile writes a durable Lance 2.0 data file through the store and
// returns its size. Its directory is not synced (the caller syncs once for
// all); on error the partial file is removed.
func (a *appender) writeDataFile(name string, top []*encoding.Field, cols []arrow.Array, rows int) (uint64, error) {
	size, w, err := a.writeDataBytes(name, top, cols, rows)
	if err != nil {
		return 0, err
	}
	if err := w.Commit(); err != nil {
		return 0, fmt.Errorf("lance: %w", err)
	}
	return size, nil
}

// writeDataBytes writes the data file's bytes and returns its size and the
// writer, not yet committed (synced); on error the partial file is removed.
func (a *appender) writeDataBytes(name string, top []*encoding.Field, cols []arrow.Array, rows int) (uint64, store.Writer, error) {
	full := filepath.Join(a.path, name)
	w, err := a.st.Create(name)
	if err != nil {
		return 0, nil, fmt.Errorf("lance: create %s: %w", full, err)
	}
	size, err := file.Write(w, full, top, cols, rows,
		file.WriteOptions{Compression: a.opts.Compression, MaxPageBytes: a.opts.MaxPageBytes, VarWidthOnly: a.opts.CompressVarWidthOnly})
	if err != nil {
		w.Abort() // never referenced by a manifest: safe to drop
		return 0, nil, err
	}
	return size, w, nil
}

// ensureExtra writes, for every fragment of latest holding a column that the
// plan rewrites, one data file with that column's values for all physical
// rows of the fragment (deleted ones included, so that row offsets and the
// deletion file stay valid), converted to the new type under the new field
// ids (§11). Files written for an earlier attempt are reused when the
// fragment's files and the new ids are unchanged; the others are removed.
// A fragment where no file holds the column reads it as NULL and needs none.
func (a *appender) ensureExtra(p *appendPlan, latest *Manifest, n naming) error {
	dir := filepath.Join(a.path, dataDir)
	want := map[uint64]*extraFile{}
	defer func() {
		for id, x := range a.extra {
			if want[id] != x {
				a.st.Remove(dataName(x.file.name)) // never referenced
			}
		}
		a.extra = want
	}()
	if len(p.rewrites) == 0 {
		return nil
	}
	d, err := load(a.path, a.opts, n, latest)
	if err != nil {
		return err
	}
	written := false
	for i := range d.frags {
		st := &d.frags[i]
		rows := st.f.physicalRows
		var rws []rewrite
		for _, rw := range p.rewrites {
			held := false
			if rw.old != nil {
				_, held = st.fileOf[rw.old.ID]
			}
			// A column the fragment lacks reads as NULL and needs no file,
			// unless it is a struct (nullStruct).
			if rows > 0 && (held || rw.new.Type.ID() == arrow.STRUCT) {
				rws = append(rws, rw)
			}
		}
		if len(rws) == 0 {
			continue
		}
		var tops []*encoding.Field
		for _, rw := range rws {
			tops = append(tops, rw.new)
		}
		ids := idsOf(tops)
		key := fmt.Sprint(st.f.id, rows, ids)
		for _, df := range st.f.files {
			key += "\x00" + df.path
		}
		if x := a.extra[st.f.id]; x != nil && x.key == key {
			want[st.f.id] = x
			continue
		}
		if !written {
			if err := a.st.MkdirAll(dataDir); err != nil {
				return fmt.Errorf("lance: create %s: %w", dir, err)
			}
		}
		name := newDataFileName()
		size, err := a.writeExtra(d, st, rws, dataName(name))
		if err != nil {
			return err
		}
		written = true
		want[st.f.id] = &extraFile{key: key, file: &writtenFile{name: name, ids: ids, size: size}}
	}
	if written {
		if err := a.st.SyncDir(dataDir); err != nil {
			return fmt.Errorf("lance: sync %s: %w", dir, err)
		}
	}
	return nil
}

// writeExtra reads the old values of the rewritten columns of one fragment,
// converts them and writes them as a new data file at path.
func (a *appender) writeExtra(d *Dataset, st *fragState, rws []rewrite, name string) (uint64, error) {
	rows := st.f.physicalRows
	var tops []*encoding.Field
	var cols []arrow.Array
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for _, rw := range rws {
		var old arrow.Array
		fi, held := -1, false
		if rw.old != nil {
			fi, held = st.fileOf[rw.old.ID]
		}
		if held {
			r, f, err := d.fileReader(&st.f.files[fi])
			if err != nil {
				return 0, err
			}
			old, err = r.ReadField(f, d.schema.ByID[rw.old.ID], st.cols[fi], 0, rows)
			f.Close()
			if err != nil {
				return 0, err
			}
		} else {
			old = array.NewNull(int(rows))
		}
		if uint64(old.Len()) != rows {
			old.Release()
			return 0, fmt.Errorf("lance: %s: fragment %d column %q: read %d rows, want %d", a.path, st.f.id, rw.new.Name, old.Len(), rows)
		}
		c, err := conform(old, rw.new)
		old.Release()
		if err != nil {
			return 0, fmt.Errorf("lance: %s: fragment %d: %w", a.path, st.f.id, err)
		}
		tops, cols = append(tops, rw.new), append(cols, c)
	}
	return a.writeDataFile(name, tops, cols, int(rows))
}
