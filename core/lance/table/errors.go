package table

import (
	"errors"
	"fmt"

	"github.com/persisting/persisting/core/lance/encoding"
)

// ErrUnsupported is wrapped by every error that refuses something core/lance
// deliberately does not implement (file format 2.1, unknown feature flags,
// encodings Lance 2.0 does not write for us, ...). Refusing is always
// preferred to misreading. It is encoding.ErrUnsupported, which the file and
// encoding layers wrap too.
var ErrUnsupported = encoding.ErrUnsupported

// ErrSchemaMismatch is wrapped when an appended record cannot be stored under
// the dataset's schema (a type change other than null -> T or int64 ->
// double, e.g. int64 -> string; a missing non-nullable column, ...).
var ErrSchemaMismatch = errors.New("lance: schema mismatch")

// ErrNoDataset is returned by Append with Options.MustExist when there is no
// dataset at the path (it was deleted while its writer held it open).
var ErrNoDataset = errors.New("lance: no dataset at the path")

// errCommitExists is returned by commit when the manifest of the version it
// tried to create already exists: another writer won that version.
var errCommitExists = errors.New("lance: version already committed")

// ErrCommitUncertain is wrapped when a manifest was linked into place but
// making that durable failed: the version may or may not survive a crash, so
// nothing it refers to may be removed. Reopen the dataset to find out.
var ErrCommitUncertain = errors.New("lance: commit outcome uncertain")

// ConflictError reports a concurrent commit that an Append cannot be rebased
// on (§13.2): an overwrite, restore, schema change, an unknown operation, a
// config change to the same keys, or a version without a transaction.
type ConflictError struct {
	Path        string
	ReadVersion uint64 // the version our append was built from
	Version     uint64 // the concurrent version that conflicts
	Operation   string // its operation, e.g. "overwrite"
	Reason      string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("lance: %s: commit conflict: version %d (%s) cannot be rebased on from version %d: %s",
		e.Path, e.Version, e.Operation, e.ReadVersion, e.Reason)
}
