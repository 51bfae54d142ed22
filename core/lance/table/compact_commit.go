package table

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"path"

	"time"

	"github.com/persisting/persisting/core/lance/pb"
	"github.com/persisting/persisting/core/store"
)

// commit commits the Rewrite on top of read, rebasing onto versions other
// writers commit first (see Compact).
func (c *compactor) commit(read *Manifest, n naming) (*CompactResult, error) {
	latest := read
	for attempt := 1; ; attempt++ {
		m, err := c.manifest(read, latest)
		if err != nil {
			return nil, err
		}
		err = commit(c.st, n, m)
		if err == nil {
			c.written = nil // referenced now
			d, err := load(c.path, c.opts, n, m)
			if err != nil {
				return nil, err
			}
			c.res.Dataset, c.res.Version = d, m.version
			return &c.res, nil
		}
		if errors.Is(err, ErrCommitUncertain) {
			c.written = nil // the version may exist: keep what it refers to
			return nil, err
		}
		if m.transactionFile != "" {
			c.st.Remove(path.Join(transactionsDir, m.transactionFile)) // describes no version
		}
		if !errors.Is(err, errCommitExists) {
			return nil, err
		}
		if attempt == maxCommitAttempts {
			return nil, fmt.Errorf("lance: %s: compaction gave up after %d commit conflicts: %w", c.path, attempt, err)
		}
		versions, _, err := listVersionNumbers(c.st)
		if err != nil {
			return nil, err
		}
		next, err := readManifest(c.st, n, versions[len(versions)-1])
		if err != nil {
			return nil, err
		}
		if err := c.checkRebase(read, latest, next, n); err != nil {
			return nil, err
		}
		latest = next
	}
}

// manifest builds the Rewrite's version on top of latest (read, the version
// the groups were planned on, or a later one we rebase onto): each group's
// run of old fragments is replaced in place by its new fragment, with a
// fresh id; everything else is latest's.
func (c *compactor) manifest(read, latest *Manifest) (*Manifest, error) {
	conflict := func(reason string) error {
		return &ConflictError{Path: c.path, ReadVersion: read.version, Version: latest.version,
			Operation: "rewrite rebase", Reason: reason}
	}
	if err := latest.checkWritable(); err != nil {
		return nil, fmt.Errorf("lance: %s: %w", c.path, err)
	}
	frags, newOf, next, reason, err := c.placeGroups(latest)
	if err != nil {
		return nil, err
	}
	if reason != "" {
		return nil, conflict(reason)
	}
	m := manifestAfterRewrite(latest, frags, next)
	uuid := newUUID()
	m.transaction = encodeTransaction(read.version, uuid, pb.OpRewrite, c.rewriteBody(newOf))
	if latest.writerFlags&flagNoTransactionFile == 0 {
		m.transactionFile = fmt.Sprintf("%d-%s.txn", read.version, uuid)
	}
	return m, nil
}

// placeGroups lays the groups over the fragments of latest: each group's
// old fragments, still contiguous and unchanged, are replaced in place by
// its new fragment (numbered from latest's next id). reason says why they
// cannot be (a conflict).
func (c *compactor) placeGroups(latest *Manifest) (frags, newOf []*fragment, next uint64, reason string, err error) {
	indexed, err := latest.indexedFragments()
	if err != nil {
		return nil, nil, 0, "", err
	}
	first := map[uint64]int{}   // first old fragment id -> group
	member := map[uint64]bool{} // every old fragment id
	for gi, g := range c.groups {
		first[g.old[0].id] = gi
		for _, fr := range g.old {
			member[fr.id] = true
			if indexed[fr.id] {
				return nil, nil, 0, fmt.Sprintf("an index now covers fragment %d", fr.id), nil
			}
		}
	}
	next = latest.nextFragmentID()
	newOf = make([]*fragment, len(c.groups))
	found := make([]bool, len(c.groups))
	for i := 0; i < len(latest.fragments); {
		fr := latest.fragments[i]
		gi, ok := first[fr.id]
		if !ok {
			if member[fr.id] {
				return nil, nil, 0, fmt.Sprintf("fragment %d moved", fr.id), nil
			}
			frags = append(frags, fr)
			i++
			continue
		}
		g := c.groups[gi]
		if why := g.stillIn(latest.fragments[i:]); why != "" {
			return nil, nil, 0, why, nil
		}
		if g.new != nil {
			nf := *g.new
			nf.id = next
			next++
			newOf[gi] = &nf
			frags = append(frags, &nf)
		}
		found[gi] = true
		i += len(g.old)
	}
	for gi, ok := range found {
		if !ok {
			return nil, nil, 0, fmt.Sprintf("fragment %d no longer exists", c.groups[gi].old[0].id), nil
		}
	}
	return frags, newOf, next, "", nil
}

// stillIn says why the group's old fragments are not the first of frags,
// contiguous and byte for byte unchanged, or "" if they are.
func (g *rewriteGroup) stillIn(frags []*fragment) string {
	for j, old := range g.old {
		if j >= len(frags) || frags[j].id != old.id {
			return fmt.Sprintf("fragments %d.. are no longer contiguous", g.old[0].id)
		}
		if !bytes.Equal(frags[j].raw, old.raw) {
			return fmt.Sprintf("fragment %d was changed (rows deleted or rewritten)", old.id)
		}
	}
	return ""
}

// manifestAfterRewrite is latest with frags as its fragments, one version on.
func manifestAfterRewrite(latest *Manifest, frags []*fragment, next uint64) *Manifest {
	m := &Manifest{
		fields:         latest.fields,
		fragments:      frags,
		version:        latest.version + 1,
		timestamp:      time.Now().UTC(),
		dataFormat:     dataFormatLance,
		dataVersion:    dataStorageVersion20,
		config:         maps.Clone(latest.config),
		schemaMetadata: latest.schemaMetadata,
		carried:        latest.carried,
		indexSection:   latest.indexSection,
		maxFragmentID:  latest.maxFragmentID,
		hasMaxFragment: latest.hasMaxFragment,
	}
	if next > latest.nextFragmentID() {
		m.maxFragmentID, m.hasMaxFragment = uint32(next-1), true
	}
	for _, fr := range m.fragments {
		if fr.deletion != nil {
			m.readerFlags |= flagDeletionFiles
		}
	}
	m.writerFlags = m.readerFlags | latest.writerFlags&flagNoTransactionFile
	if len(m.config) > 0 {
		m.writerFlags |= flagTableConfig
	}
	return m
}

// rewriteBody is the Rewrite operation: one RewriteGroup{old_fragments,
// new_fragments} per group, no rewritten indices (indexed fragments are
// never rewritten). It also counts what the groups remove and add.
func (c *compactor) rewriteBody(newOf []*fragment) []byte {
	var body []byte
	c.res.Groups, c.res.FragmentsRemoved, c.res.FragmentsAdded, c.res.FilesRemoved = len(c.groups), 0, 0, 0
	for gi, g := range c.groups {
		var gb []byte
		for _, old := range g.old {
			gb = pb.AppendMessage(gb, pb.RewriteGroupOldFragments, old.raw)
			c.res.FragmentsRemoved++
			c.res.FilesRemoved += len(old.files)
			if old.deletion != nil {
				c.res.FilesRemoved++
			}
		}
		if nf := newOf[gi]; nf != nil {
			gb = pb.AppendMessage(gb, pb.RewriteGroupNewFragments, nf.encode(true))
			c.res.FragmentsAdded++
		}
		body = pb.AppendMessage(body, pb.RewriteGroups, gb)
	}
	return body
}

// checkRebase decides whether the Rewrite may be retried on top of next,
// having last been built on prev: the operations committed in between must
// leave our old fragments alone (Lance's check_rewrite_txn; manifest then
// checks the fragments themselves and the index coverage).
func (c *compactor) checkRebase(read, prev, next *Manifest, n naming) error {
	if !bytes.Equal(appendFields(nil, 1, read.fields), appendFields(nil, 1, next.fields)) {
		return &ConflictError{Path: c.path, ReadVersion: read.version, Version: next.version,
			Operation: "schema change", Reason: "the schema changed since the rewrite was planned"}
	}
	for v := prev.version + 1; v <= next.version; v++ {
		m := next
		if v != next.version {
			var err error
			if m, err = readManifest(c.st, n, v); err != nil {
				return err
			}
		}
		raw, err := transactionOf(c.st, m)
		if err != nil {
			return err
		}
		if raw == nil {
			return &ConflictError{Path: c.path, ReadVersion: read.version, Version: v, Operation: "unknown",
				Reason: "the version has no transaction to check"}
		}
		t, err := decodeTransaction(raw)
		if err != nil {
			return fmt.Errorf("lance: %s: transaction of version %d: %w", c.path, v, err)
		}
		if reason := rewriteConflict(t.op); reason != "" {
			return &ConflictError{Path: c.path, ReadVersion: read.version, Version: v, Operation: opName(t.op), Reason: reason}
		}
	}
	return nil
}

// rewriteConflict says why a Rewrite cannot be rebased over a concurrent
// operation, or "" when it can provided our old fragments are untouched
// (checked on the fragments themselves). Stricter than Lance for Project
// (a schema change here) and for operations it does not know.
func rewriteConflict(op pb.Number) string {
	switch op {
	case pb.OpAppend, pb.OpReserveFragments, pb.OpUpdateConfig, pb.OpCreateIndex,
		pb.OpDelete, pb.OpUpdate, pb.OpRewrite, pb.OpDataReplacement:
		return ""
	case pb.OpOverwrite, pb.OpRestore:
		return "it replaces the table"
	case pb.OpMerge, pb.OpProject:
		return "it changes the schema or the fragments' files"
	}
	return "the operation is not known to be compatible with a rewrite"
}

// transactionOf returns the raw transaction of a version: inline, else its
// .txn file; nil when it has neither.
func transactionOf(st store.Store, m *Manifest) ([]byte, error) {
	if m.transaction != nil {
		return m.transaction, nil
	}
	if m.transactionFile == "" {
		return nil, nil
	}
	return readWhole(st, path.Join(transactionsDir, m.transactionFile))
}
