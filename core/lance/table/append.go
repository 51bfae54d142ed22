package table

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/persisting/persisting/core/lance/encoding"
	"github.com/persisting/persisting/core/lance/file"
	"github.com/persisting/persisting/core/lance/pb"
)

// maxCommitAttempts bounds the rebase loop of Append; each retry means
// another writer committed in between.
const maxCommitAttempts = 32

// Append writes rec as one new fragment (one data file) and commits one new
// version whose config is the old config merged with configUpdates, so that
// the engine's watermark and the rows it covers become visible atomically.
// It creates the dataset if it does not exist.
//
// Schema handling (evolve.go, §11): columns of the dataset missing from rec,
// or null-typed in rec, are not written and read as NULL (they must be
// nullable; struct columns are written as empty structs instead, see
// nullStruct). rec may carry the changes core/schema makes, and they are
// stored as Lance does:
//   - a new column, a new struct child at any depth, a null-typed field
//     taking a type: new nullable field ids that old fragments read as NULL
//     (metadata only; a new struct-typed field gets values instead);
//   - int64 widened to double (top level, in a struct, as list items): the
//     top-level column gets new field ids under the same name and every
//     existing fragment one extra data file with the converted values of
//     all its physical rows; the old ids stay in the old files, ignored;
//   - ints into a double column, a struct missing some children: converted
//     to the dataset's type, no schema change.
//
// Any other type difference is an ErrSchemaMismatch naming the column path.
// A schema change commits a Merge, as Lance does; otherwise an Append (a
// create commits an Overwrite).
//
// On a commit conflict it reloads the latest version and checks the
// transactions committed in between: appends, deletes, compactions, index
// builds and config changes to other keys are rebased on (our fragment goes
// after theirs with a fresh id); anything else returns a *ConflictError.
func Append(path string, rec arrow.RecordBatch, configUpdates map[string]string, opts Options) (*Dataset, error) {
	opts, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	a := &appender{path: path, opts: opts, rec: rec, cfg: configUpdates}
	ds, err := a.run()
	if err != nil {
		// Files never referenced by a committed manifest.
		if a.file != nil {
			opts.FS.Remove(filepath.Join(path, dataDir, a.file.name))
		}
		for _, x := range a.extra {
			opts.FS.Remove(filepath.Join(path, dataDir, x.file.name))
		}
	}
	return ds, err
}

type appender struct {
	path string
	opts Options
	rec  arrow.RecordBatch
	cfg  map[string]string
	file *writtenFile // data file of the current plan, if written
	// extra are the data files written for the plan's rewrites, by
	// fragment id (§11): one per existing fragment holding a rewritten
	// column.
	extra map[uint64]*extraFile
}

// extraFile is the file holding the rewritten columns of one fragment.
type extraFile struct {
	key  string // what it was written for: fragment files and field ids
	file *writtenFile
}

type writtenFile struct {
	name string
	ids  []int32
	size uint64
}

// appendPlan is how rec fits the schema of the version we commit on top of.
type appendPlan struct {
	fields  []*encoding.Field // schema of the new version, pre-order
	top     []*encoding.Field // top-level fields stored in our data file
	srcCols []arrow.Array     // their data, as in the record
	cols    []arrow.Array     // their data, converted to the fields' types
	fileIDs []int32           // field ids of our data file, pre-order
	op      pb.Number         // the Transaction operation
	// rewrites are the columns whose existing values get new field ids
	// and one extra data file per fragment (§11).
	rewrites []rewrite
	owned    []arrow.Array // arrays made for the plan, released with it
	// preservesNullability is Merge.preserves_nullability: data staged
	// against the old schema may omit every field we add.
	preservesNullability bool
}

// rewrite replaces top-level column old by new (same name, new ids). With
// old nil, new is a new column that existing fragments get NULLs of (a
// struct, stored as empty structs: nullStruct).
type rewrite struct {
	old, new *encoding.Field
}

func (a *appender) run() (*Dataset, error) {
	fs := a.opts.FS
	latest, n, err := a.latest()
	if err != nil {
		return nil, err
	}
	readVersion := uint64(0)
	if latest != nil {
		readVersion = latest.version
	}
	for attempt := 1; ; attempt++ {
		plan, err := a.plan(latest)
		if err != nil {
			return nil, err
		}
		if latest != nil && plan.op == pb.OpAppend && a.rec.NumRows() == 0 && len(a.cfg) == 0 {
			plan.release()
			return load(a.path, a.opts, n, latest) // nothing to commit
		}
		err = a.ensureFile(plan, latest == nil)
		if err == nil {
			err = a.ensureExtra(plan, latest, n)
		}
		plan.release()
		if err != nil {
			return nil, err
		}
		m := a.manifest(latest, plan, readVersion)
		err = commit(fs, a.path, n, m)
		if err == nil {
			return load(a.path, a.opts, n, m)
		}
		if errors.Is(err, ErrCommitUncertain) {
			a.file, a.extra = nil, nil // the version may exist: keep everything it refers to
			return nil, err
		}
		if m.transactionFile != "" {
			fs.Remove(filepath.Join(a.path, transactionsDir, m.transactionFile)) // describes no version
		}
		if !errors.Is(err, errCommitExists) {
			return nil, err
		}
		if attempt == maxCommitAttempts {
			return nil, fmt.Errorf("lance: %s: gave up after %d commit conflicts: %w", a.path, attempt, err)
		}
		next, n2, err := a.latest()
		if err != nil {
			return nil, err
		}
		if err := a.checkRebase(latest, next, n2, readVersion); err != nil {
			return nil, err
		}
		latest, n = next, n2
	}
}

// latest loads the newest manifest, or nil when there is no dataset yet.
func (a *appender) latest() (*Manifest, naming, error) {
	versions, n, err := listVersionNumbers(a.opts.FS, a.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, namingV2, nil
	}
	if err != nil {
		return nil, 0, err
	}
	m, err := readManifest(a.opts.FS, a.path, n, versions[len(versions)-1])
	return m, n, err
}

// checkRebase decides whether our append may be retried on top of next,
// given that it was last planned on prev (nil: we were creating the dataset).
func (a *appender) checkRebase(prev, next *Manifest, n naming, readVersion uint64) error {
	from := uint64(1)
	if prev != nil {
		from = prev.version + 1
		if !bytes.Equal(appendFields(nil, 1, prev.fields), appendFields(nil, 1, next.fields)) {
			return &ConflictError{Path: a.path, ReadVersion: readVersion, Version: next.version,
				Operation: "schema change", Reason: "the schema changed since our data file was planned"}
		}
	}
	for v := from; v <= next.version; v++ {
		m := next
		if v != next.version {
			var err error
			if m, err = readManifest(a.opts.FS, a.path, n, v); err != nil {
				return err
			}
		}
		if prev == nil && v == 1 {
			// Someone else created the dataset first: our append is
			// re-planned against their schema like any first append.
			continue
		}
		raw := m.transaction
		if raw == nil && m.transactionFile != "" {
			var err error
			if raw, err = readWhole(a.opts.FS, filepath.Join(a.path, transactionsDir, m.transactionFile)); err != nil {
				return err
			}
		}
		if raw == nil {
			return &ConflictError{Path: a.path, ReadVersion: readVersion, Version: v, Operation: "unknown",
				Reason: "the version has no transaction to check"}
		}
		t, err := decodeTransaction(raw)
		if err != nil {
			return fmt.Errorf("lance: %s: transaction of version %d: %w", a.path, v, err)
		}
		if reason := rebaseConflict(t, a.cfg); reason != "" {
			return &ConflictError{Path: a.path, ReadVersion: readVersion, Version: v, Operation: opName(t.op), Reason: reason}
		}
	}
	return nil
}

// plan fits rec to the schema of latest (or creates the schema).
func (a *appender) plan(latest *Manifest) (*appendPlan, error) {
	rs := a.rec.Schema()
	seen := map[string]bool{}
	for _, f := range rs.Fields() {
		if seen[f.Name] {
			return nil, fmt.Errorf("%w: record has two columns named %q", ErrSchemaMismatch, f.Name)
		}
		seen[f.Name] = true
	}
	if latest == nil {
		next := int32(0)
		all, err := encoding.FieldsFromArrow(rs.Fields(), &next, -1, 0)
		if err != nil {
			return nil, err
		}
		if _, err := encoding.BuildSchema(all); err != nil {
			return nil, err
		}
		p := &appendPlan{fields: all, top: encoding.TopOf(all), srcCols: a.rec.Columns(), op: pb.OpOverwrite}
		p.fileIDs = idsOf(p.top)
		return p, p.conform()
	}
	if err := latest.checkWritable(); err != nil {
		return nil, fmt.Errorf("lance: %s: %w", a.path, err)
	}
	s, err := encoding.BuildSchema(cloneFields(latest.fields))
	if err != nil {
		return nil, fmt.Errorf("lance: %s version %d: %w", a.path, latest.version, err)
	}
	hasRows := false
	for _, fr := range latest.fragments {
		hasRows = hasRows || fr.physicalRows > 0
	}
	nextID := latest.maxFieldID() + 1
	p := &appendPlan{op: pb.OpAppend, preservesNullability: true}
	var newTop []*encoding.Field
	used := map[string]bool{}
	for _, df := range s.Top {
		idx := rs.FieldIndices(df.Name)
		if len(idx) == 0 {
			if !df.Nullable {
				return nil, fmt.Errorf("%w: non-nullable column %q is missing from the record", ErrSchemaMismatch, df.Name)
			}
			newTop = append(newTop, df)
			if df.Type.ID() == arrow.STRUCT {
				// Empty structs rather than none (nullStruct).
				nulls := array.NewNull(int(a.rec.NumRows()))
				p.owned = append(p.owned, nulls)
				p.top, p.srcCols = append(p.top, df), append(p.srcCols, nulls)
			}
			continue
		}
		used[df.Name] = true
		af, col := rs.Field(idx[0]), a.rec.Column(idx[0])
		if af.Type.ID() == arrow.NULL && df.Type.ID() == arrow.STRUCT {
			// Written as empty structs rather than left out: a struct a
			// fragment lacks reads as NULL, which Lance cannot rewrite
			// (nullStruct).
			newTop = append(newTop, df)
			p.top, p.srcCols = append(p.top, df), append(p.srcCols, col)
			continue
		}
		nf, ev, err := evolve(df, af, df.Name, false, hasRows)
		if err != nil {
			return nil, err
		}
		if ev.rewrite {
			// §11: the column gets new ids under the same name; every
			// existing fragment gets its converted values in an extra file.
			nf = renumbered(nf)
			p.rewrites = append(p.rewrites, rewrite{old: df, new: nf})
			p.preservesNullability = false // staged old-schema data would lose this column
		}
		assignIDs(nf, -1, &nextID)
		if ev.changed {
			p.op = pb.OpMerge
		}
		newTop = append(newTop, nf)
		if af.Type.ID() == arrow.NULL {
			if !nf.Nullable {
				return nil, fmt.Errorf("%w: column %q is non-nullable but the record has only nulls", ErrSchemaMismatch, df.Name)
			}
			continue // not written: reads as NULL
		}
		p.top, p.srcCols = append(p.top, nf), append(p.srcCols, col)
	}
	for i, af := range rs.Fields() {
		if used[af.Name] {
			continue
		}
		nf, err := newFieldTree(af)
		if err != nil {
			return nil, err
		}
		// Existing fragments read the new column as NULL.
		nf.Nullable = nf.Nullable || hasRows
		assignIDs(nf, -1, &nextID)
		newTop = append(newTop, nf)
		p.top, p.srcCols = append(p.top, nf), append(p.srcCols, a.rec.Column(i))
		p.op = pb.OpMerge
	}
	for _, t := range newTop {
		p.fields = append(p.fields, encoding.Subtree(t)...)
	}
	if _, err := encoding.BuildSchema(p.fields); err != nil { // links the tree and resolves the new types
		return nil, err
	}
	for _, f := range p.fields {
		if _, old := s.ByID[f.ID]; !old && !f.Nullable {
			p.preservesNullability = false // only on a dataset without rows
		}
	}
	rewritten := map[*encoding.Field]bool{}
	for _, rw := range p.rewrites {
		rewritten[rw.new] = true
	}
	for _, t := range newTop {
		if _, old := s.ByID[t.ID]; !old && hasRows && t.Type.ID() == arrow.STRUCT && !rewritten[t] {
			// A new struct column: existing fragments get empty structs
			// under its id (nullStruct).
			p.rewrites = append(p.rewrites, rewrite{new: t})
		}
	}
	p.fileIDs = idsOf(p.top)
	return p, p.conform()
}

// conform converts the record's columns to the types of the fields they are
// written under.
func (p *appendPlan) conform() error {
	p.cols = make([]arrow.Array, 0, len(p.top))
	for i, f := range p.top {
		c, err := conform(p.srcCols[i], f)
		if err != nil {
			p.release()
			return err
		}
		p.cols = append(p.cols, c)
		if !f.Nullable && c.NullN() > 0 {
			p.release()
			return fmt.Errorf("%w: column %q is non-nullable but the record has %d nulls", ErrSchemaMismatch, f.Name, c.NullN())
		}
	}
	return nil
}

func (p *appendPlan) release() {
	for _, c := range append(p.cols, p.owned...) {
		c.Release()
	}
	p.cols, p.owned = nil, nil
}

// cloneFields copies a manifest's field list so that building a schema tree
// from it (which links children) leaves the manifest's fields alone.
func cloneFields(fs []*encoding.Field) []*encoding.Field {
	out := make([]*encoding.Field, len(fs))
	for i, f := range fs {
		out[i] = f.Copy()
	}
	return out
}

func idsOf(top []*encoding.Field) []int32 {
	var ids []int32
	for _, t := range top {
		for _, f := range encoding.Subtree(t) {
			ids = append(ids, f.ID)
		}
	}
	return ids
}

// ensureFile writes the data file for the plan, unless the file written for
// an earlier attempt already carries the same field ids.
func (a *appender) ensureFile(p *appendPlan, creating bool) error {
	fs := a.opts.FS
	if a.file != nil && slices.Equal(a.file.ids, p.fileIDs) {
		return nil
	}
	if a.file != nil {
		fs.Remove(filepath.Join(a.path, dataDir, a.file.name)) // never referenced
		a.file = nil
	}
	if a.rec.NumRows() == 0 {
		return nil
	}
	dir := filepath.Join(a.path, dataDir)
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lance: create %s: %w", dir, err)
	}
	if creating {
		// Make the dataset directory itself durable before anything in it
		// is committed.
		for _, d := range []string{filepath.Dir(filepath.Clean(a.path)), a.path} {
			if err := fs.SyncDir(d); err != nil {
				return fmt.Errorf("lance: sync %s: %w", d, err)
			}
		}
	}
	// Any unique name works for Lance (§2); a UUID's hex is unique.
	name := strings.ReplaceAll(newUUID(), "-", "") + ".lance"
	size, err := file.Write(fs, filepath.Join(dir, name), p.top, p.cols, int(a.rec.NumRows()),
		file.WriteOptions{Compression: a.opts.Compression, MaxPageBytes: a.opts.MaxPageBytes})
	if err != nil {
		return err
	}
	if err := fs.SyncDir(dir); err != nil {
		fs.Remove(filepath.Join(dir, name))
		return fmt.Errorf("lance: sync %s: %w", dir, err)
	}
	a.file = &writtenFile{name: name, ids: p.fileIDs, size: size}
	return nil
}

// ensureExtra writes, for every fragment of latest holding a column that the
// plan rewrites, one data file with that column's values for all physical
// rows of the fragment (deleted ones included, so that row offsets and the
// deletion file stay valid), converted to the new type under the new field
// ids (§11). Files written for an earlier attempt are reused when the
// fragment's files and the new ids are unchanged; the others are removed.
// A fragment where no file holds the column reads it as NULL and needs none.
func (a *appender) ensureExtra(p *appendPlan, latest *Manifest, n naming) error {
	fs := a.opts.FS
	dir := filepath.Join(a.path, dataDir)
	want := map[uint64]*extraFile{}
	defer func() {
		for id, x := range a.extra {
			if want[id] != x {
				fs.Remove(filepath.Join(dir, x.file.name)) // never referenced
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
			if err := fs.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("lance: create %s: %w", dir, err)
			}
		}
		name := strings.ReplaceAll(newUUID(), "-", "") + ".lance"
		size, err := a.writeExtra(d, st, rws, filepath.Join(dir, name))
		if err != nil {
			return err
		}
		written = true
		want[st.f.id] = &extraFile{key: key, file: &writtenFile{name: name, ids: ids, size: size}}
	}
	if written {
		if err := fs.SyncDir(dir); err != nil {
			return fmt.Errorf("lance: sync %s: %w", dir, err)
		}
	}
	return nil
}

// writeExtra reads the old values of the rewritten columns of one fragment,
// converts them and writes them as a new data file at path.
func (a *appender) writeExtra(d *Dataset, st *fragState, rws []rewrite, path string) (uint64, error) {
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
	return file.Write(a.opts.FS, path, tops, cols, int(rows),
		file.WriteOptions{Compression: a.opts.Compression, MaxPageBytes: a.opts.MaxPageBytes})
}

// manifest builds the next version on top of latest (nil: create).
func (a *appender) manifest(latest *Manifest, p *appendPlan, readVersion uint64) *Manifest {
	m := &Manifest{
		fields:      p.fields,
		version:     1,
		timestamp:   time.Now().UTC(),
		dataFormat:  dataFormatLance,
		dataVersion: dataStorageVersion20,
		config:      map[string]string{},
	}
	carriedWriterFlags := uint64(0)
	if latest != nil {
		m.version = latest.version + 1
		m.fragments = slices.Clone(latest.fragments)
		for i, fr := range m.fragments {
			if x := a.extra[fr.id]; x != nil {
				m.fragments[i] = fr.withFile(dataFile{path: x.file.name, fields: x.file.ids, columns: columnsOf(x.file.ids),
					major: dataFileMajor20, minor: dataFileMinor20, size: x.file.size})
			}
		}
		m.maxFragmentID, m.hasMaxFragment = latest.maxFragmentID, latest.hasMaxFragment
		m.config = maps.Clone(latest.config)
		m.schemaMetadata = latest.schemaMetadata
		m.carried = latest.carried
		m.indexSection = latest.indexSection
		carriedWriterFlags = latest.writerFlags & flagNoTransactionFile
	} else if md := a.rec.Schema().Metadata(); md.Len() > 0 {
		m.schemaMetadata = map[string][]byte{}
		for i, k := range md.Keys() {
			m.schemaMetadata[k] = []byte(md.Values()[i])
			m.carried = pb.AppendMessage(m.carried, pb.ManifestSchemaMetadata, pb.MapEntry(k, []byte(md.Values()[i])))
		}
	}
	maps.Copy(m.config, a.cfg)
	var ours *fragment
	if a.file != nil {
		id := uint64(0)
		if latest != nil {
			id = latest.nextFragmentID()
		}
		ours = &fragment{id: id, physicalRows: uint64(a.rec.NumRows()), files: []dataFile{{
			path: a.file.name, fields: a.file.ids, columns: columnsOf(a.file.ids),
			major: dataFileMajor20, minor: dataFileMinor20, size: a.file.size,
		}}}
		m.fragments = append(m.fragments, ours)
		m.maxFragmentID, m.hasMaxFragment = uint32(id), true
	}
	for _, fr := range m.fragments {
		if fr.deletion != nil {
			m.readerFlags |= flagDeletionFiles
		}
	}
	m.writerFlags = m.readerFlags | carriedWriterFlags
	if len(m.config) > 0 {
		m.writerFlags |= flagTableConfig
	}

	body := operationBody(p, m, ours)
	uuid := newUUID()
	m.transaction = encodeTransaction(readVersion, uuid, p.op, body)
	if carriedWriterFlags&flagNoTransactionFile == 0 {
		m.transactionFile = fmt.Sprintf("%d-%s.txn", readVersion, uuid)
	}
	return m
}

// columnsOf is column_indices for a 2.0 file holding ids: every field has its
// own column, in order.
func columnsOf(ids []int32) []int32 {
	cols := make([]int32, len(ids))
	for i := range cols {
		cols[i] = int32(i)
	}
	return cols
}
