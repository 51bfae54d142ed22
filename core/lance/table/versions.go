package table

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/persisting/persisting/core/store"
)

// Manifest naming (§3). V2: {u64::MAX - version:020}.manifest, so that a
// lexicographic listing puts the newest first; V1: {version}.manifest. A
// dataset uses one scheme; Lance errors when both are present and so do we.

const (
	versionsDir     = "_versions"
	transactionsDir = "_transactions"
	dataDir         = "data"
	deletionsDir    = "_deletions"
	manifestSuffix  = ".manifest"
	v2NameLen       = 20 + len(manifestSuffix)
)

type naming int

const (
	namingV2 naming = iota + 1
	namingV1
)

func manifestName(n naming, version uint64) string {
	if n == namingV1 {
		return strconv.FormatUint(version, 10) + manifestSuffix
	}
	return fmt.Sprintf("%020d%s", uint64(math.MaxUint64)-version, manifestSuffix)
}

// parseManifestName returns the version and scheme of a manifest file name,
// or ok=false for anything else: staging files (…manifest-<uuid>), detached
// versions (d…), the version hint.
func parseManifestName(name string) (version uint64, n naming, ok bool) {
	if !strings.HasSuffix(name, manifestSuffix) || strings.HasPrefix(name, "d") {
		return 0, 0, false
	}
	num, err := strconv.ParseUint(strings.TrimSuffix(name, manifestSuffix), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if len(name) == v2NameLen {
		return math.MaxUint64 - num, namingV2, true
	}
	return num, namingV1, true
}

// listVersionNumbers returns the committed versions in ascending order and
// the dataset's naming scheme. A missing dataset wraps os.ErrNotExist.
func listVersionNumbers(st store.Store) ([]uint64, naming, error) {
	dir := filepath.Join(st.Root(), versionsDir)
	names, err := st.List(versionsDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, fmt.Errorf("lance: no dataset at %s: %w", st.Root(), os.ErrNotExist)
		}
		return nil, 0, fmt.Errorf("lance: list %s: %w", dir, err)
	}
	var versions []uint64
	var scheme naming
	for _, name := range names {
		v, n, ok := parseManifestName(name)
		if !ok {
			continue
		}
		if scheme != 0 && n != scheme {
			return nil, 0, fmt.Errorf("lance: %s mixes V1 and V2 manifest names", dir)
		}
		scheme = n
		versions = append(versions, v)
	}
	if len(versions) == 0 {
		return nil, 0, fmt.Errorf("lance: no versions in %s: %w", dir, os.ErrNotExist)
	}
	slices.Sort(versions)
	return versions, scheme, nil
}

// readManifest reads and parses one version's manifest. A version that does
// not exist wraps os.ErrNotExist.
func readManifest(st store.Store, n naming, version uint64) (*Manifest, error) {
	name := path.Join(versionsDir, manifestName(n, version))
	data, err := readWhole(st, name)
	if err != nil {
		return nil, err
	}
	full := filepath.Join(st.Root(), name)
	m, err := parseManifest(data, full)
	if err != nil {
		return nil, err
	}
	if m.version != version {
		return nil, fmt.Errorf("lance: %s holds version %d", full, m.version)
	}
	return m, nil
}

func readWhole(st store.Store, name string) ([]byte, error) {
	data, err := st.Get(name)
	if err != nil {
		return nil, fmt.Errorf("lance: read %s: %w", filepath.Join(st.Root(), name), err)
	}
	return data, nil
}
