package table

import (
	"errors"
	"fmt"
	"os"
	"path"

	"github.com/persisting/persisting/core/store"
)

// commit makes m visible as version m.version (§13.1). Everything m refers
// to (data files, the transaction file) must already be durable. The
// manifest is put with the store's atomic put-if-absent (locally: a staging
// name that readers ignore, fsynced, then hard-linked to its final name; a
// plain rename would silently replace a concurrent writer's version).
//
// It returns errCommitExists when another writer committed the version first.
func commit(st store.Store, n naming, m *Manifest) error {
	return commitAfter(st, n, m, nil)
}

// commitAfter is commit with a barrier: durable, when non-nil, waits until
// the data files m refers to are durable (they are synced in the
// background while the transaction file is written) and reports whether
// they are; the manifest is only put after it returned nil.
func commitAfter(st store.Store, n naming, m *Manifest, durable func() error) error {
	if m.transactionFile != "" {
		tname := path.Join(transactionsDir, m.transactionFile)
		if err := st.Put(tname, m.transaction); err != nil {
			if durable != nil {
				durable()
			}
			return fmt.Errorf("lance: write %s in %s: %w", tname, st.Root(), err)
		}
	}
	if durable != nil {
		if err := durable(); err != nil {
			return err
		}
	}
	name := path.Join(versionsDir, manifestName(n, m.version))
	err := st.PutIfAbsent(name, m.encodeFile())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrUncertain):
		return fmt.Errorf("%w: version %d of %s: %w", ErrCommitUncertain, m.version, st.Root(), err)
	case errors.Is(err, os.ErrExist):
		return errCommitExists
	}
	return fmt.Errorf("lance: commit %s in %s: %w", name, st.Root(), err)
}
