package table

import (
	"fmt"

	"github.com/persisting/persisting/core/lance/pb"
)

// indexInfo is what compaction and cleanup need from one entry of the
// manifest's IndexSection (lance.table.IndexMetadata): the index's UUID
// (its files live under _indices/<uuid>/) and the fragments it covers.
type indexInfo struct {
	uuid string
	name string
	// frags is the decoded fragment_bitmap; allFrags is set when the index
	// stores none (indices from old Lance), which we read as "covers every
	// fragment".
	frags    map[uint32]bool
	allFrags bool
}

// parseIndexSection decodes the index entries of a raw IndexSection.
func parseIndexSection(b []byte) ([]indexInfo, error) {
	var out []indexInfo
	err := pb.Walk(b, func(e pb.Entry) error {
		if e.Num != pb.IndexSectionIndices {
			return nil
		}
		body, err := e.Bytes()
		if err != nil {
			return err
		}
		ix := indexInfo{allFrags: true}
		err = pb.Walk(body, func(f pb.Entry) error {
			switch f.Num {
			case pb.IndexMetadataUUID:
				u, err := f.Bytes()
				if err != nil {
					return err
				}
				return pb.Walk(u, func(g pb.Entry) error {
					if g.Num == pb.UUIDBytes {
						if len(g.B) != 16 {
							return fmt.Errorf("%w: index uuid of %d bytes", pb.ErrMalformed, len(g.B))
						}
						ix.uuid = fmt.Sprintf("%x-%x-%x-%x-%x", g.B[0:4], g.B[4:6], g.B[6:8], g.B[8:10], g.B[10:16])
					}
					return nil
				})
			case pb.IndexMetadataName:
				ix.name = string(f.B)
			case pb.IndexMetadataFragmentBitmap:
				bm, err := f.Bytes()
				if err != nil {
					return err
				}
				ids, err := readRoaring(bm)
				if err != nil {
					return fmt.Errorf("index fragment bitmap: %w", err)
				}
				ix.allFrags = false
				ix.frags = make(map[uint32]bool, len(ids))
				for _, id := range ids {
					ix.frags[id] = true
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		out = append(out, ix)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lance: index section: %w", err)
	}
	return out, nil
}

// covers tells whether the index holds rows of fragment id.
func (ix *indexInfo) covers(id uint64) bool {
	return ix.allFrags || (id <= 0xffffffff && ix.frags[uint32(id)])
}

// indexedFragments returns the ids of m's fragments that some index of m
// covers (see indexInfo.allFrags).
func (m *Manifest) indexedFragments() (map[uint64]bool, error) {
	out := map[uint64]bool{}
	if m.indexSection == nil {
		return out, nil
	}
	ixs, err := parseIndexSection(m.indexSection)
	if err != nil {
		return nil, err
	}
	for _, fr := range m.fragments {
		for i := range ixs {
			if ixs[i].covers(fr.id) {
				out[fr.id] = true
				break
			}
		}
	}
	return out, nil
}
