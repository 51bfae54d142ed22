package table

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/persisting/persisting/core/store"
)

// Version cleanup (§13.5): what pylance's cleanup_old_versions does, with
// the engine's pins on top.

// Defaults of CleanupOptions, Lance's.
const (
	// DefaultCleanupOlderThan is pylance's older_than when neither an age
	// nor a count is given.
	DefaultCleanupOlderThan = 14 * 24 * time.Hour
	// DefaultCleanupGrace is Lance's UNVERIFIED_THRESHOLD_DAYS: a file no
	// manifest refers to may belong to a commit in flight until it is this
	// old.
	DefaultCleanupGrace = 7 * 24 * time.Hour
)

// CleanupOptions say which versions Cleanup removes. A version is removed
// when it is neither the latest, nor tagged (_refs/tags), nor pinned, and
// it is old by every rule given: not among the KeepLast newest versions,
// and committed more than OlderThan ago. With neither rule set, OlderThan
// is DefaultCleanupOlderThan (pylance's default).
type CleanupOptions struct {
	KeepLast  int           // keep the newest KeepLast versions; 0: no count rule
	OlderThan time.Duration // keep versions committed within OlderThan of Now; 0: no age rule
	// Pinned versions and versions for which Pin returns true are kept,
	// e.g. versions readers of the engine still use.
	Pinned []uint64
	Pin    func(version uint64) bool
	// Grace: a data, deletion, transaction or index file that no manifest
	// (kept or removed) refers to may belong to a commit in flight, and is
	// removed only when last written more than Grace ago. 0 means
	// DefaultCleanupGrace (7 days, as Lance). DeleteUnverified removes
	// such files regardless of age (pylance's delete_unverified): only
	// safe when nobody else writes to the dataset.
	Grace            time.Duration
	DeleteUnverified bool
	// Now is the time the rules are evaluated at; zero means time.Now().
	Now time.Time
}

// CleanupStats say what a Cleanup removed.
type CleanupStats struct {
	VersionsRemoved int      // manifests removed
	FilesRemoved    int      // every file removed, manifests included
	BytesRemoved    int64    // their bytes
	Removed         []string // their names, relative to the dataset
	Kept            []uint64 // the versions kept, ascending
}

// Cleanup removes old versions of the dataset at path and the files that no
// kept version refers to, as pylance's cleanup_old_versions does:
//
//   - the manifests of the versions to remove (never the latest, a tagged or
//     a pinned version);
//   - data files, deletion files, transaction files and index directories
//     (by index UUID) that no kept version refers to: files a removed
//     version referred to go at once, files no version ever referred to
//     (leftovers of failed or in-flight commits) only once last written
//     more than Grace ago; leftover staging manifests of our own commits
//     after Grace too. (Lance's code also lists only files written before
//     the oldest kept version; pylance 14 was checked to remove files
//     written later too, and so do we: the sets of files left are equal.)
//
// Manifests are removed first, oldest first, and only then the files, so
// that at every moment each remaining version has all its files; a crash in
// between leaves unreferenced files that a later Cleanup removes after
// Grace. A manifest that cannot be read stops the cleanup (as in Lance: an
// I/O error must not make referenced files look unreferenced). Datasets
// with branches (_refs/branches) are refused with ErrUnsupported.
func Cleanup(ctx context.Context, path string, co CleanupOptions, opts Options) (*CleanupStats, error) {
	opts, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if co.KeepLast < 0 || co.OlderThan < 0 || co.Grace < 0 {
		return nil, fmt.Errorf("lance: cleanup: negative option in %+v", co)
	}
	if co.KeepLast == 0 && co.OlderThan == 0 {
		co.OlderThan = DefaultCleanupOlderThan
	}
	if co.Grace == 0 {
		co.Grace = DefaultCleanupGrace
	}
	if co.Now.IsZero() {
		co.Now = time.Now()
	}
	st := opts.store(path)
	lister, ok := st.(store.InfoLister)
	if !ok {
		return nil, fmt.Errorf("%w: cleanup of %s needs a store that lists modification times", ErrUnsupported, st.Root())
	}
	c := &cleaner{ctx: ctx, co: co, st: st, ls: lister, stats: &CleanupStats{}}
	return c.stats, c.run()
}

type cleaner struct {
	ctx   context.Context
	co    CleanupOptions
	st    store.Store
	ls    store.InfoLister
	stats *CleanupStats
	// kept are the files the kept versions refer to; verified those the
	// removed versions refer to (so not part of a commit in flight).
	kept, verified map[string]bool
	keptIdx        map[string]bool // index UUIDs of kept versions
	verifiedIdx    map[string]bool
}

func (c *cleaner) run() error {
	versions, n, err := listVersionNumbers(c.st)
	if err != nil {
		return err
	}
	tagged, err := c.tags()
	if err != nil {
		return err
	}
	latest := versions[len(versions)-1]
	beforeVersion := uint64(0)
	if c.co.KeepLast > 0 {
		beforeVersion = versions[max(0, len(versions)-c.co.KeepLast)]
	}
	beforeTime := c.co.Now.Add(-c.co.OlderThan)
	c.kept, c.verified = map[string]bool{}, map[string]bool{}
	c.keptIdx, c.verifiedIdx = map[string]bool{}, map[string]bool{}
	var remove []uint64
	for _, v := range versions {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		m, err := readManifest(c.st, n, v)
		if err != nil {
			return err
		}
		old := (c.co.KeepLast == 0 || v < beforeVersion) && (c.co.OlderThan == 0 || m.timestamp.Before(beforeTime))
		keep := v == latest || tagged[v] || slices.Contains(c.co.Pinned, v) || (c.co.Pin != nil && c.co.Pin(v)) || !old
		files, idx := c.kept, c.keptIdx
		if keep {
			c.stats.Kept = append(c.stats.Kept, v)
		} else {
			remove = append(remove, v)
			files, idx = c.verified, c.verifiedIdx
		}
		if err := referenced(m, files, idx); err != nil {
			return err
		}
	}

	// Manifests first, oldest first: every remaining version stays whole.
	sizes := map[string]int64{}
	if infos, err := c.ls.ListInfo(versionsDir); err == nil {
		for _, in := range infos {
			sizes[in.Name] = in.Size
		}
	}
	for _, v := range remove {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		name := manifestName(n, v)
		if err := c.remove(path.Join(versionsDir, name), sizes[name]); err != nil {
			return err
		}
		c.stats.VersionsRemoved++
	}
	if len(remove) > 0 {
		if err := c.st.SyncDir(versionsDir); err != nil {
			return fmt.Errorf("lance: sync %s: %w", path.Join(c.st.Root(), versionsDir), err)
		}
	}
	for _, dir := range []string{dataDir, deletionsDir, transactionsDir, versionsDir} {
		if err := c.sweep(dir); err != nil {
			return err
		}
	}
	return c.sweepIndices()
}

// referenced adds the files m refers to (store names) and its index UUIDs.
func referenced(m *Manifest, files, idx map[string]bool) error {
	for _, fr := range m.fragments {
		for _, df := range fr.files {
			files[dataName(df.path)] = true
		}
		if fr.deletion != nil {
			p, err := deletionPath(fr.id, fr.deletion)
			if err != nil {
				return err
			}
			files[p] = true
		}
	}
	if m.transactionFile != "" {
		files[path.Join(transactionsDir, m.transactionFile)] = true
	}
	if m.indexSection != nil {
		ixs, err := parseIndexSection(m.indexSection)
		if err != nil {
			return err
		}
		for _, ix := range ixs {
			idx[ix.uuid] = true
		}
	}
	return nil
}

// stagingManifest matches the staging names store.Local commits through
// (<final>.manifest-<32 hex>) and Lance's .tmp files.
var stagingManifest = regexp.MustCompile(`^(\d+\.manifest-[0-9a-f]{32}|\.tmp.*)$`)

// cleanableExt lists, by directory and extension, the files Lance's cleanup
// considers; anything else is left alone.
var cleanableExt = map[string]bool{
	dataDir + ".lance": true, deletionsDir + ".arrow": true, deletionsDir + ".bin": true, transactionsDir + ".txn": true,
}

// sweep removes the unreferenced files of one directory (see Cleanup).
func (c *cleaner) sweep(dir string) error {
	infos, err := c.ls.ListInfo(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lance: list %s: %w", path.Join(c.st.Root(), dir), err)
	}
	removed := false
	for _, in := range infos {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		name := path.Join(dir, in.Name)
		if in.Dir || c.kept[name] {
			continue
		}
		switch {
		case dir == versionsDir:
			if !stagingManifest.MatchString(in.Name) || c.maybeInFlight(in) {
				continue
			}
		case !cleanableExt[dir+path.Ext(in.Name)]:
			continue
		case c.maybeInFlight(in) && !c.verified[name]:
			continue
		}
		if err := c.remove(name, in.Size); err != nil {
			return err
		}
		removed = true
	}
	if removed {
		if err := c.st.SyncDir(dir); err != nil {
			return fmt.Errorf("lance: sync %s: %w", path.Join(c.st.Root(), dir), err)
		}
	}
	return nil
}

// sweepIndices removes the files of index directories _indices/<uuid>/ that
// no kept version refers to, by the same rules as sweep.
func (c *cleaner) sweepIndices() error {
	const indicesDir = "_indices"
	dirs, err := c.ls.ListInfo(indicesDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lance: list %s: %w", path.Join(c.st.Root(), indicesDir), err)
	}
	for _, d := range dirs {
		if !d.Dir || c.keptIdx[d.Name] {
			continue
		}
		dir := path.Join(indicesDir, d.Name)
		if err := c.sweepIndexDir(dir, c.verifiedIdx[d.Name]); err != nil {
			return err
		}
	}
	return nil
}

func (c *cleaner) sweepIndexDir(dir string, verified bool) error {
	infos, err := c.ls.ListInfo(dir)
	if err != nil {
		return fmt.Errorf("lance: list %s: %w", path.Join(c.st.Root(), dir), err)
	}
	all := true
	for _, in := range infos {
		name := path.Join(dir, in.Name)
		if in.Dir {
			if err := c.sweepIndexDir(name, verified); err != nil {
				return err
			}
			continue
		}
		if c.maybeInFlight(in) && !verified {
			all = false
			continue
		}
		if err := c.remove(name, in.Size); err != nil {
			return err
		}
	}
	if all {
		c.st.Remove(dir) // the empty directory, where there are directories
	}
	return c.st.SyncDir(path.Dir(dir))
}

// maybeInFlight: a file written within Grace may belong to a commit that
// has not happened yet.
func (c *cleaner) maybeInFlight(in store.Info) bool {
	return !c.co.DeleteUnverified && !in.ModTime.Before(c.co.Now.Add(-c.co.Grace))
}

func (c *cleaner) remove(name string, size int64) error {
	if err := c.st.Remove(name); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // removed by someone else meanwhile
		}
		return fmt.Errorf("lance: cleanup: remove %s: %w", path.Join(c.st.Root(), name), err)
	}
	c.stats.FilesRemoved++
	c.stats.BytesRemoved += size
	c.stats.Removed = append(c.stats.Removed, name)
	return nil
}

// tags returns the versions named by Lance tags (_refs/tags/<name>.json,
// {"version": N, ...}); branches (_refs/branches) are refused: their
// versions may share our files and we do not read them.
func (c *cleaner) tags() (map[uint64]bool, error) {
	if names, err := c.st.List("_refs/branches"); err == nil && len(names) > 0 {
		return nil, fmt.Errorf("%w: %s has branches (_refs/branches); cleanup does not know what they refer to",
			ErrUnsupported, c.st.Root())
	}
	names, err := c.st.List("_refs/tags")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lance: list tags of %s: %w", c.st.Root(), err)
	}
	out := map[uint64]bool{}
	for _, name := range names {
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		b, err := readWhole(c.st, path.Join("_refs/tags", name))
		if err != nil {
			return nil, err
		}
		var tag struct {
			Version *uint64 `json:"version"`
		}
		if err := json.Unmarshal(b, &tag); err != nil || tag.Version == nil {
			return nil, fmt.Errorf("lance: %s: tag %s: not {\"version\": N}: %v", c.st.Root(), name, err)
		}
		out[*tag.Version] = true
	}
	return out, nil
}
