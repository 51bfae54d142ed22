package table

import (
	"fmt"
	"strings"
	"time"

	"github.com/persisting/persisting/core/lance/encoding"
	"github.com/persisting/persisting/core/lance/pb"
)

// Feature flags (§13.3). Only these bits are understood; anything else in a
// manifest makes us refuse to read (reader flags) or write (writer flags).
const (
	flagDeletionFiles       = 1
	flagTableConfig         = 8
	flagNoTransactionFile   = 32
	knownReaderFlags        = flagDeletionFiles
	knownWriterFlags        = flagDeletionFiles | flagTableConfig | flagNoTransactionFile
	writerLibrary           = "persisting"
	writerLibraryVersion    = "0.1.0"
	dataFormatLance         = "lance"
	dataStorageVersion20    = "2.0"
	deletionFileArrowArray  = 0
	deletionFileBitmap      = 1
	dataFileMajor20         = 2
	dataFileMinor20         = 0
	manifestFooterVersion   = 2
	manifestFooterMajorZero = 0
)

// Manifest is one parsed version of a dataset (lance.table.Manifest).
type Manifest struct {
	fields          []*encoding.Field
	fragments       []*fragment
	version         uint64
	timestamp       time.Time
	indexSection    []byte // raw IndexSection message; nil when absent
	readerFlags     uint64
	writerFlags     uint64
	maxFragmentID   uint32
	hasMaxFragment  bool
	transactionFile string
	transaction     []byte // raw inline Transaction; nil when absent
	dataFormat      string
	dataVersion     string
	config          map[string]string
	schemaMetadata  map[string][]byte
	hasBasePaths    bool
	// carried holds the raw bytes (tag included, in the order read) of the
	// fields re-emitted verbatim on the next commit; see carriedField.
	carried []byte
}

// carriedField tells whether a top-level field of the Manifest we commit on
// top of is copied, byte for byte, into the version we commit. This is the
// rule, by field number (Lance 14.0.2's table.proto; each number was checked
// against pylance 14.0.2):
//
// Carried: schema_metadata (5), next_row_id (14: used only with stable row
// ids, which checkWritable refuses; Lance's own append keeps it unchanged
// then), base_paths (18), table_metadata (19), branch (20), and every field
// number that Lance 14 does not define either, as protobuf implementations
// keep unknown fields. Such a field comes from a newer Lance. One that a
// writer must understand comes with a writer feature flag, and checkWritable
// refuses to commit on top of a manifest with a flag it does not know, so
// nothing is copied from such a manifest. What is left to chance: a future
// field of the kinds below that comes without a flag (as 23 did) would be
// copied stale.
//
// Not carried, because the value describes one version, or a position in
// one manifest file, or is derived from what our commit changes (Lance's own
// append drops 4, 8, 17, 22, 25 and 26, and maintains 24):
//
//	 4  version_aux_data        file position of per-version data ("not inheritable")
//	 8  tag                     names one version
//	17  blob_dataset_version    reserved; named a version of a blob dataset
//	22  fragment_tree           index over the fragment list, which we change
//	24  max_allocated_field_id  field-id high-water mark; Lance rejects it
//	                            without the stable-field-id writer flag
//	25  clustering              clustering state of the version
//	26  max_clustering_id       (Lance's append drops both)
//
// Rebuilt by us, so never copied: fields (1), fragments (2; each one from its
// stored bytes, see fragment.raw), version (3), index_section (6: our offset
// of the carried index section), timestamp (7), feature flags (9, 10),
// max_fragment_id (11), transaction_file (12), writer_version (13),
// data_format (15), config (16), and the offset of the inline transaction,
// transaction_section (21 before Lance 14, 23 since): copied, it would point
// at other bytes of our file, and Lance fails to open the version.
func carriedField(num pb.Number) bool {
	switch num {
	case pb.ManifestFields, pb.ManifestFragments, pb.ManifestVersion, pb.ManifestIndexSection,
		pb.ManifestTimestamp, pb.ManifestReaderFeatureFlags, pb.ManifestWriterFeatureFlags,
		pb.ManifestMaxFragmentID, pb.ManifestTransactionFile, pb.ManifestWriterVersion,
		pb.ManifestDataFormat, pb.ManifestConfig, pb.ManifestTransactionSectionOld,
		pb.ManifestTransactionSection: // rebuilt
		return false
	case pb.ManifestVersionAuxData, pb.ManifestTag, pb.ManifestBlobDatasetVersion,
		pb.ManifestFragmentTree, pb.ManifestMaxAllocatedFieldID, pb.ManifestClustering,
		pb.ManifestMaxClusteringID: // per-version
		return false
	}
	return true
}

// Version is the manifest's version number.
func (m *Manifest) Version() uint64 { return m.version }

// NumFragments is the number of fragments of this version.
func (m *Manifest) NumFragments() int { return len(m.fragments) }

func flagNames(bits uint64) string {
	var out []string
	for b := uint64(1); b != 0; b <<= 1 {
		if bits&b != 0 {
			out = append(out, fmt.Sprint(b))
		}
	}
	return strings.Join(out, "|")
}

// checkReadable refuses what this reader does not implement instead of
// misreading it (§12 step 2, §10).
func (m *Manifest) checkReadable() error {
	if unknown := m.readerFlags &^ knownReaderFlags; unknown != 0 {
		return fmt.Errorf("%w: version %d needs reader feature flags %s (stable row ids=2, base paths=16, newer features>=64)",
			encoding.ErrUnsupported, m.version, flagNames(unknown))
	}
	if m.dataFormat != dataFormatLance || m.dataVersion != dataStorageVersion20 {
		return fmt.Errorf("%w: version %d has data storage format %q %q; only Lance file format 2.0 is implemented",
			encoding.ErrUnsupported, m.version, m.dataFormat, m.dataVersion)
	}
	for _, fr := range m.fragments {
		if fr.hasRowIDs {
			return fmt.Errorf("%w: fragment %d carries stable row ids", encoding.ErrUnsupported, fr.id)
		}
		if fr.deletion != nil && fr.deletion.hasBaseID {
			return fmt.Errorf("%w: fragment %d deletion file lives under another base path", encoding.ErrUnsupported, fr.id)
		}
		for _, df := range fr.files {
			if df.major != dataFileMajor20 || df.minor != dataFileMinor20 {
				return fmt.Errorf("%w: data file %s is format %d.%d; only 2.0 is implemented",
					encoding.ErrUnsupported, df.path, df.major, df.minor)
			}
			if df.hasBaseID {
				return fmt.Errorf("%w: data file %s lives under another base path", encoding.ErrUnsupported, df.path)
			}
		}
	}
	return nil
}

// checkWritable refuses to commit on top of a version whose writer feature
// flags or storage format this writer does not implement (§13.3, §10).
func (m *Manifest) checkWritable() error {
	if unknown := m.writerFlags &^ knownWriterFlags; unknown != 0 {
		return fmt.Errorf("%w: version %d needs writer feature flags %s", encoding.ErrUnsupported, m.version, flagNames(unknown))
	}
	if m.hasBasePaths {
		return fmt.Errorf("%w: version %d uses base paths", encoding.ErrUnsupported, m.version)
	}
	if m.dataVersion != dataStorageVersion20 {
		return fmt.Errorf("%w: cannot append to a dataset whose data storage format is %q: this writer only writes Lance file format 2.0",
			encoding.ErrUnsupported, m.dataVersion)
	}
	return m.checkReadable()
}

// maxFieldID is the largest field id ever used: in the schema or in any data
// file, because ids of dropped or replaced columns stay reserved (§6).
func (m *Manifest) maxFieldID() int32 {
	maxID := int32(-1)
	for _, f := range m.fields {
		maxID = max(maxID, f.ID)
	}
	for _, fr := range m.fragments {
		for _, df := range fr.files {
			for _, id := range df.fields {
				maxID = max(maxID, id)
			}
		}
	}
	return maxID
}

// nextFragmentID is the id for a new fragment: above the high-water mark and
// above every fragment present.
func (m *Manifest) nextFragmentID() uint64 {
	next := uint64(0)
	if m.hasMaxFragment {
		next = uint64(m.maxFragmentID) + 1
	}
	for _, fr := range m.fragments {
		next = max(next, fr.id+1)
	}
	return next
}
