package table

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/persisting/persisting/core/vfs"
)

// commit makes m visible as version m.version (§13.1). Everything m refers
// to (data files, the transaction file) must already be durable. The
// manifest is written under a staging name that readers ignore (it does not
// end in ".manifest"), fsynced, then hard-linked to its final name: the link
// fails if the version exists, which makes the commit an atomic
// create-if-not-exists. A plain rename would silently replace a concurrent
// writer's version, so it is never used.
//
// It returns errCommitExists when another writer committed the version first.
func commit(fs vfs.FS, root string, n naming, m *Manifest) error {
	vdir := filepath.Join(root, versionsDir)
	if err := fs.MkdirAll(vdir, 0o755); err != nil {
		return fmt.Errorf("lance: create %s: %w", vdir, err)
	}
	if m.transactionFile != "" {
		tdir := filepath.Join(root, transactionsDir)
		if err := fs.MkdirAll(tdir, 0o755); err != nil {
			return fmt.Errorf("lance: create %s: %w", tdir, err)
		}
		tpath := filepath.Join(tdir, m.transactionFile)
		if err := vfs.WriteFileSync(fs, tpath, m.transaction); err != nil {
			return fmt.Errorf("lance: write %s: %w", tpath, err)
		}
	}
	final := filepath.Join(vdir, manifestName(n, m.version))
	tmp := final + "-" + newUUID()
	if err := writeSynced(fs, tmp, m.encodeFile()); err != nil {
		return err
	}
	if err := fs.Link(tmp, final); err != nil {
		fs.Remove(tmp) // staging name: invisible to readers, nothing refers to it
		if errors.Is(err, os.ErrExist) {
			return errCommitExists
		}
		return fmt.Errorf("lance: link %s: %w", final, err)
	}
	// The version is committed once the link is durable. A staging file left
	// behind by a failed remove only costs disk space: readers ignore it.
	_ = fs.Remove(tmp)
	if err := fs.SyncDir(vdir); err != nil {
		return fmt.Errorf("%w: sync %s after linking version %d: %w", ErrCommitUncertain, vdir, m.version, err)
	}
	return nil
}

// writeSynced writes data to a new file and fsyncs it (not its directory).
func writeSynced(fs vfs.FS, path string, data []byte) error {
	f, err := fs.Create(path)
	if err != nil {
		return fmt.Errorf("lance: create %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fs.Remove(path)
		return fmt.Errorf("lance: write %s: %w", path, err)
	}
	return nil
}
