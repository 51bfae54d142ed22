package table

import (
	"errors"
	"fmt"
	"maps"
	"path"

	"github.com/persisting/persisting/core/lance/pb"
)

// UpdateConfig commits a version that changes only config keys (Lance's
// UpdateConfig transaction, upsert_values): the fragments, schema and
// everything else are the latest version's. A commit lost to another
// writer is retried on top of theirs (nothing of ours depends on what they
// changed). A missing dataset wraps os.ErrNotExist.
//
// persisting uses it to fence a bucket's dataset: the new owner writes its
// epoch, and Options.CheckCommit of the old owner's appends refuses to
// commit on top of a newer epoch.
func UpdateConfig(dsPath string, updates map[string]string, opts Options) (*Dataset, error) {
	opts, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	st := opts.store(dsPath)
	for attempt := 1; ; attempt++ {
		versions, n, err := listVersionNumbers(st)
		if err != nil {
			return nil, err
		}
		latest, err := readManifest(st, n, versions[len(versions)-1])
		if err != nil {
			return nil, err
		}
		if err := latest.checkWritable(); err != nil {
			return nil, fmt.Errorf("lance: %s: %w", dsPath, err)
		}
		m := manifestAfterRewrite(latest, latest.fragments, latest.nextFragmentID())
		maps.Copy(m.config, updates)
		m.writerFlags |= flagTableConfig
		uuid := newUUID()
		body := pb.AppendStringMap(nil, pb.UpdateConfigUpsertValues, updates)
		m.transaction = encodeTransaction(latest.version, uuid, pb.OpUpdateConfig, body)
		if latest.writerFlags&flagNoTransactionFile == 0 {
			m.transactionFile = fmt.Sprintf("%d-%s.txn", latest.version, uuid)
		}
		err = commit(st, n, m)
		if err == nil {
			return load(dsPath, opts, n, m)
		}
		if m.transactionFile != "" && !errors.Is(err, ErrCommitUncertain) {
			st.Remove(path.Join(transactionsDir, m.transactionFile)) // describes no version
		}
		if !errors.Is(err, errCommitExists) {
			return nil, err
		}
		if attempt == maxCommitAttempts {
			return nil, fmt.Errorf("lance: %s: config update gave up after %d commit conflicts: %w", dsPath, attempt, err)
		}
	}
}
