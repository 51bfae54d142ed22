package lance

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
	"google.golang.org/protobuf/encoding/protowire"
)

// maxCommitAttempts bounds the rebase loop of Append; each retry means
// another writer committed in between.
const maxCommitAttempts = 32

// Append writes rec as one new fragment (one data file) and commits one new
// version whose config is the old config merged with configUpdates, so that
// the engine's watermark and the rows it covers become visible atomically.
// It creates the dataset if it does not exist.
//
// Schema handling: columns of the dataset missing from rec, or null-typed in
// rec, are not written and read as NULL (they must be nullable); a column new
// to the dataset is added (nullable, new field id); a dataset column of type
// null that rec now gives a real type is replaced by a field with a new id
// (its old values were all NULL, so nothing is lost). Any other type
// difference is an ErrSchemaMismatch. A schema change commits a Merge, as
// Lance does; otherwise an Append (a create commits an Overwrite).
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
	if err != nil && a.file != nil {
		// The data file was never referenced by a committed manifest.
		opts.FS.Remove(filepath.Join(path, dataDir, a.file.name))
	}
	return ds, err
}

type appender struct {
	path string
	opts Options
	rec  arrow.RecordBatch
	cfg  map[string]string
	file *writtenFile // data file of the current plan, if written
}

type writtenFile struct {
	name string
	ids  []int32
	size uint64
}

// appendPlan is how rec fits the schema of the version we commit on top of.
type appendPlan struct {
	fields  []*field      // schema of the new version, pre-order
	top     []*field      // top-level fields stored in our data file
	cols    []arrow.Array // their data
	fileIDs []int32       // field ids of our data file, pre-order
	op      protowire.Number
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
		if latest != nil && plan.op == opAppend && a.rec.NumRows() == 0 && len(a.cfg) == 0 {
			return load(a.path, a.opts, n, latest) // nothing to commit
		}
		if err := a.ensureFile(plan, latest == nil); err != nil {
			return nil, err
		}
		m := a.manifest(latest, plan, readVersion)
		err = commit(fs, a.path, n, m)
		if err == nil {
			return load(a.path, a.opts, n, m)
		}
		if errors.Is(err, ErrCommitUncertain) {
			a.file = nil // the version may exist: keep everything it refers to
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
		all, err := fieldsFromArrow(rs.Fields(), &next, -1, 0)
		if err != nil {
			return nil, err
		}
		if _, err := buildSchema(all); err != nil {
			return nil, err
		}
		p := &appendPlan{fields: all, top: topOf(all), cols: a.rec.Columns(), op: opOverwrite}
		p.fileIDs = idsOf(p.top)
		return p, nil
	}
	if err := latest.checkWritable(); err != nil {
		return nil, fmt.Errorf("lance: %s: %w", a.path, err)
	}
	s, err := buildSchema(latest.fields)
	if err != nil {
		return nil, fmt.Errorf("lance: %s version %d: %w", a.path, latest.version, err)
	}
	hasRows := false
	for _, fr := range latest.fragments {
		hasRows = hasRows || fr.physicalRows > 0
	}
	nextID := latest.maxFieldID() + 1
	p := &appendPlan{op: opAppend}
	var newTop []*field
	used := map[string]bool{}
	newField := func(af arrow.Field) (*field, error) {
		fs, err := fieldsFromArrow([]arrow.Field{af}, &nextID, -1, 0)
		if err != nil {
			return nil, err
		}
		if hasRows {
			// Existing fragments read the new column as NULL.
			fs[0].nullable = true
		}
		return fs[0], nil
	}
	for _, df := range s.top {
		idx := rs.FieldIndices(df.name)
		if len(idx) == 0 {
			if !df.nullable {
				return nil, fmt.Errorf("%w: non-nullable column %q is missing from the record", ErrSchemaMismatch, df.name)
			}
			newTop = append(newTop, df)
			continue
		}
		used[df.name] = true
		af, col := rs.Field(idx[0]), a.rec.Column(idx[0])
		tmp := int32(0)
		cand, err := fieldsFromArrow([]arrow.Field{af}, &tmp, -1, 0)
		if err != nil {
			return nil, err
		}
		switch {
		case sameShape(df, cand[0]):
			if !df.nullable && col.NullN() > 0 {
				return nil, fmt.Errorf("%w: column %q is non-nullable but the record has %d nulls", ErrSchemaMismatch, df.name, col.NullN())
			}
			newTop = append(newTop, df)
			p.top, p.cols = append(p.top, df), append(p.cols, col)
		case df.logical == "null":
			// null -> T: a new field id under the same name; the old id
			// stays in old files and is ignored (§11).
			nf, err := newField(af)
			if err != nil {
				return nil, err
			}
			nf.nullable = true
			newTop = append(newTop, nf)
			p.top, p.cols = append(p.top, nf), append(p.cols, col)
			p.op = opMerge
		case cand[0].logical == "null":
			if !df.nullable {
				return nil, fmt.Errorf("%w: column %q is non-nullable but the record has only nulls", ErrSchemaMismatch, df.name)
			}
			newTop = append(newTop, df) // not written: reads as NULL
		default:
			return nil, fmt.Errorf("%w: column %q is %s in the dataset but %s in the record",
				ErrSchemaMismatch, df.name, df.typ, af.Type)
		}
	}
	for i, af := range rs.Fields() {
		if used[af.Name] {
			continue
		}
		nf, err := newField(af)
		if err != nil {
			return nil, err
		}
		newTop = append(newTop, nf)
		p.top, p.cols = append(p.top, nf), append(p.cols, a.rec.Column(i))
		p.op = opMerge
	}
	for _, t := range newTop {
		p.fields = append(p.fields, subtree(t)...)
	}
	p.fileIDs = idsOf(p.top)
	return p, nil
}

func idsOf(top []*field) []int32 {
	var ids []int32
	for _, t := range top {
		for _, f := range subtree(t) {
			ids = append(ids, f.id)
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
	size, err := writeDataFile(fs, filepath.Join(dir, name), p.top, p.cols, int(a.rec.NumRows()),
		writeOptions{compression: a.opts.Compression, maxPageBytes: a.opts.MaxPageBytes})
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
			m.carried = pbMsg(m.carried, 5, pbBytes(pbString(nil, 1, k), 2, []byte(md.Values()[i])))
		}
	}
	maps.Copy(m.config, a.cfg)
	var ours *fragment
	if a.file != nil {
		id := uint64(0)
		if latest != nil {
			id = latest.nextFragmentID()
		}
		cols := make([]int32, len(a.file.ids))
		for i := range cols {
			cols[i] = int32(i) // 2.0: every field has its own column, in order
		}
		ours = &fragment{id: id, physicalRows: uint64(a.rec.NumRows()), files: []dataFile{{
			path: a.file.name, fields: a.file.ids, columns: cols,
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

	var body []byte
	switch p.op {
	case opAppend:
		if ours != nil {
			body = pbMsg(body, 1, ours.encode(false))
		}
	case opOverwrite:
		if ours != nil {
			body = pbMsg(body, 1, ours.encode(false))
		}
		body = appendFields(body, 2, p.fields)
		body = appendBytesMap(body, 3, m.schemaMetadata)
		body = pbStringMap(body, 4, m.config)
	case opMerge:
		for _, fr := range m.fragments {
			body = pbMsg(body, 1, fr.encode(true))
		}
		body = appendFields(body, 2, p.fields)
		body = appendBytesMap(body, 3, m.schemaMetadata)
		// Every field we add is nullable, so data staged against the old
		// schema may omit it: tell newer Lance writers not to conflict.
		body = pbBool(body, 4, true)
	}
	uuid := newUUID()
	m.transaction = encodeTransaction(readVersion, uuid, p.op, body)
	if carriedWriterFlags&flagNoTransactionFile == 0 {
		m.transactionFile = fmt.Sprintf("%d-%s.txn", readVersion, uuid)
	}
	return m
}

func appendFields(b []byte, num protowire.Number, fs []*field) []byte {
	for _, f := range fs {
		b = pbMsg(b, num, f.encode())
	}
	return b
}

func appendBytesMap(b []byte, num protowire.Number, m map[string][]byte) []byte {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = pbMsg(b, num, pbBytes(pbString(nil, 1, k), 2, m[k]))
	}
	return b
}
