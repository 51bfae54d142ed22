package table

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"

	"github.com/persisting/persisting/core/store"

	"github.com/persisting/persisting/core/lance/encoding"
)

// deletionPath is _deletions/{fragment_id}-{read_version}-{id}.{arrow|bin}.
func deletionPath(fragID uint64, d *deletionFile) (string, error) {
	ext := ""
	switch d.fileType {
	case deletionFileArrowArray:
		ext = "arrow"
	case deletionFileBitmap:
		ext = "bin"
	default:
		return "", fmt.Errorf("%w: deletion file type %d", encoding.ErrUnsupported, d.fileType)
	}
	return path.Join(deletionsDir, fmt.Sprintf("%d-%d-%d.%s", fragID, d.readVersion, d.id, ext)), nil
}

// readDeletions returns the sorted, distinct deleted row offsets of a
// fragment, ignoring offsets at or beyond its physical row count.
func readDeletions(st store.Store, fr *fragment) ([]uint32, error) {
	name, err := deletionPath(fr.id, fr.deletion)
	if err != nil {
		return nil, err
	}
	data, err := readWhole(st, name)
	if err != nil {
		return nil, err
	}
	var rows []uint32
	if fr.deletion.fileType == deletionFileArrowArray {
		rows, err = readArrowRowIDs(data)
	} else {
		rows, err = readRoaring(data)
	}
	if err != nil {
		return nil, fmt.Errorf("lance: %s: %w", filepath.Join(st.Root(), name), err)
	}
	// Lance writes the arrow form unsorted.
	slices.Sort(rows)
	rows = slices.Compact(rows)
	end, _ := slices.BinarySearch(rows, uint32(min(fr.physicalRows, 1<<32-1)))
	if fr.physicalRows > 1<<32-1 {
		end = len(rows)
	}
	return rows[:end], nil
}
