package table

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/persisting/persisting/core/lance/encoding"
	"github.com/persisting/persisting/core/lance/pb"
	"github.com/persisting/persisting/core/store"
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
	a := &appender{path: path, opts: opts, st: opts.store(path), rec: rec, cfg: configUpdates}
	ds, err := a.run()
	a.waitFile() // a no-op unless run returned early
	if err != nil {
		// Files never referenced by a committed manifest.
		if a.file != nil {
			a.st.Remove(dataName(a.file.name))
		}
		for _, x := range a.extra {
			a.st.Remove(dataName(x.file.name))
		}
	}
	return ds, err
}

type appender struct {
	path string
	opts Options
	st   store.Store
	rec  arrow.RecordBatch
	cfg  map[string]string
	file *writtenFile // data file of the current plan, if written
	// syncing is the background sync of file, until waitFile collects it.
	syncing chan error
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
	latest, n, err := a.latest()
	if err != nil {
		return nil, err
	}
	if latest == nil && a.opts.MustExist {
		return nil, fmt.Errorf("lance: append to %s: %w", a.path, ErrNoDataset)
	}
	readVersion := uint64(0)
	if latest != nil {
		readVersion = latest.version
	}
	for attempt := 1; ; attempt++ {
		if a.opts.CheckCommit != nil && latest != nil {
			if err := a.opts.CheckCommit(latest.config); err != nil {
				return nil, err
			}
		}
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
		err = commitAfter(a.st, n, m, a.waitFile)
		if err == nil {
			return load(a.path, a.opts, n, m)
		}
		if errors.Is(err, ErrCommitUncertain) {
			a.file, a.extra = nil, nil // the version may exist: keep everything it refers to
			return nil, err
		}
		if m.transactionFile != "" {
			a.st.Remove(path.Join(transactionsDir, m.transactionFile)) // describes no version
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
	versions, n, err := listVersionNumbers(a.st)
	if errors.Is(err, os.ErrNotExist) {
		return nil, namingV2, nil
	}
	if err != nil {
		return nil, 0, err
	}
	m, err := readManifest(a.st, n, versions[len(versions)-1])
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
			if m, err = readManifest(a.st, n, v); err != nil {
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
			if raw, err = readWhole(a.st, path.Join(transactionsDir, m.transactionFile)); err != nil {
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
