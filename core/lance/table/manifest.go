package table

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/persisting/persisting/core/lance/encoding"
	"github.com/persisting/persisting/core/lance/file"
	"github.com/persisting/persisting/core/lance/pb"
)

// Manifest file layout (§4):
//
//	[u32 len][IndexSection]   optional, reached through Manifest.index_section
//	[u32 len][Transaction]    optional, reached through Manifest.transaction_section
//	pos: [u32 len][Manifest]  must end exactly where the footer starts
//	[i64 pos][i16 0][i16 2]"LANC"

const manifestFooterLen = 16

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
func carriedField(num protowire.Number) bool {
	switch num {
	case 1, 2, 3, 6, 7, 9, 10, 11, 12, 13, 15, 16, 21, 23: // rebuilt
		return false
	case 4, 8, 17, 22, 24, 25, 26: // per-version
		return false
	}
	return true
}

type fragment struct {
	id           uint64
	files        []dataFile
	deletion     *deletionFile
	physicalRows uint64
	hasRowIDs    bool
	// raw is the DataFragment as read; existing fragments are re-emitted
	// from it so that nothing Lance stored in them is lost.
	raw []byte
}

type dataFile struct {
	path      string
	fields    []int32
	columns   []int32
	major     uint32
	minor     uint32
	size      uint64
	hasBaseID bool
}

type deletionFile struct {
	fileType    uint64
	readVersion uint64
	id          uint64
	numDeleted  uint64
	hasBaseID   bool
}

// Version is the manifest's version number.
func (m *Manifest) Version() uint64 { return m.version }

// NumFragments is the number of fragments of this version.
func (m *Manifest) NumFragments() int { return len(m.fragments) }

// ParseManifest decodes a whole manifest file and its schema. It checks the
// layout and the field tree, but not whether this package can read or write
// the dataset (Open does).
func ParseManifest(data []byte) (*Manifest, error) {
	m, err := parseManifest(data, "manifest")
	if err != nil {
		return nil, err
	}
	if _, err := encoding.BuildSchema(m.fields); err != nil {
		return nil, err
	}
	return m, nil
}

func parseManifest(data []byte, path string) (*Manifest, error) {
	size := uint64(len(data))
	errAt := func(off uint64, format string, args ...any) error {
		return fmt.Errorf("lance: %s at offset %d: %s", path, off, fmt.Sprintf(format, args...))
	}
	if size < manifestFooterLen+4 {
		return nil, errAt(0, "file of %d bytes is too short for a manifest", size)
	}
	foot := data[size-manifestFooterLen:]
	if !bytes.Equal(foot[12:], file.Magic) {
		return nil, errAt(size-4, "bad magic %q", foot[12:])
	}
	pos := binary.LittleEndian.Uint64(foot)
	if pos > size-manifestFooterLen-4 {
		return nil, errAt(size-manifestFooterLen, "manifest position %d beyond the file", pos)
	}
	n := uint64(binary.LittleEndian.Uint32(data[pos:]))
	// Lance requires the manifest to end exactly at the footer.
	if n != size-manifestFooterLen-4-pos {
		return nil, errAt(pos, "manifest length %d does not end at the footer (%d)", n, size-manifestFooterLen)
	}
	m := &Manifest{config: map[string]string{}}
	var idxPos, txnPos, txnPos23 *uint64
	err := pb.Walk(data[pos+4:pos+4+n], func(p pb.Entry) error {
		var err error
		switch p.Num {
		case 1:
			if err = p.Want(protowire.BytesType); err == nil {
				var f *encoding.Field
				if f, err = encoding.DecodeField(p.B); err == nil {
					m.fields = append(m.fields, f)
				}
			}
		case 2:
			if err = p.Want(protowire.BytesType); err == nil {
				var fr *fragment
				if fr, err = decodeFragment(p.B); err == nil {
					m.fragments = append(m.fragments, fr)
				}
			}
		case 3:
			err = p.Want(protowire.VarintType)
			m.version = p.V
		case 5:
			var k string
			var v []byte
			if k, v, err = p.MapEntry(); err == nil {
				if m.schemaMetadata == nil {
					m.schemaMetadata = map[string][]byte{}
				}
				m.schemaMetadata[k] = v
				m.carried = append(m.carried, p.Raw...)
			}
		case 6:
			err = p.Want(protowire.VarintType)
			v := p.V
			idxPos = &v
		case 7:
			if err = p.Want(protowire.BytesType); err == nil {
				m.timestamp, err = decodeTimestamp(p.B)
			}
		case 9:
			err = p.Want(protowire.VarintType)
			m.readerFlags = p.V
		case 10:
			err = p.Want(protowire.VarintType)
			m.writerFlags = p.V
		case 11:
			err = p.Want(protowire.VarintType)
			m.maxFragmentID, m.hasMaxFragment = uint32(p.V), true
		case 12:
			err = p.Want(protowire.BytesType)
			m.transactionFile = string(p.B)
		case 15:
			if err = p.Want(protowire.BytesType); err == nil {
				err = pb.Walk(p.B, func(q pb.Entry) error {
					switch q.Num {
					case 1:
						m.dataFormat = string(q.B)
					case 2:
						m.dataVersion = string(q.B)
					}
					return nil
				})
			}
		case 16:
			var k string
			var v []byte
			if k, v, err = p.MapEntry(); err == nil {
				m.config[k] = string(v)
			}
		case 18:
			m.hasBasePaths = true
			m.carried = append(m.carried, p.Raw...)
		case 19, 20:
			m.carried = append(m.carried, p.Raw...)
		case 21:
			err = p.Want(protowire.VarintType)
			v := p.V
			txnPos = &v
		case 23:
			// Lance 14 writes the inline transaction's offset here (21 is
			// then transaction_section_deprecated) and prefers it to 21.
			err = p.Want(protowire.VarintType)
			v := p.V
			txnPos23 = &v
		default:
			if carriedField(p.Num) {
				m.carried = append(m.carried, p.Raw...)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lance: %s at offset %d: %w", path, pos+4, err)
	}
	if txnPos23 != nil {
		txnPos = txnPos23
	}
	section := func(off uint64, what string) ([]byte, error) {
		if pos < 4 || off > pos-4 {
			return nil, errAt(off, "%s section outside the file before the manifest", what)
		}
		l := uint64(binary.LittleEndian.Uint32(data[off:]))
		if l > pos-off-4 {
			return nil, errAt(off, "%s section of %d bytes overlaps the manifest", what, l)
		}
		return data[off+4 : off+4+l], nil
	}
	if idxPos != nil {
		if m.indexSection, err = section(*idxPos, "index"); err != nil {
			return nil, err
		}
	}
	if txnPos != nil {
		if m.transaction, err = section(*txnPos, "transaction"); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func decodeTimestamp(b []byte) (time.Time, error) {
	var secs, nanos int64
	err := pb.Walk(b, func(p pb.Entry) error {
		if err := p.Want(protowire.VarintType); err != nil {
			return err
		}
		switch p.Num {
		case 1:
			secs = int64(p.V)
		case 2:
			nanos = int64(int32(p.V))
		}
		return nil
	})
	return time.Unix(secs, nanos).UTC(), err
}

func decodeFragment(b []byte) (*fragment, error) {
	fr := &fragment{raw: b}
	err := pb.Walk(b, func(p pb.Entry) error {
		var err error
		switch p.Num {
		case 1:
			err = p.Want(protowire.VarintType)
			fr.id = p.V
		case 2:
			if err = p.Want(protowire.BytesType); err == nil {
				var df dataFile
				if df, err = decodeDataFile(p.B); err == nil {
					fr.files = append(fr.files, df)
				}
			}
		case 3:
			if err = p.Want(protowire.BytesType); err == nil {
				fr.deletion, err = decodeDeletionFile(p.B)
			}
		case 4:
			err = p.Want(protowire.VarintType)
			fr.physicalRows = p.V
		case 5, 6:
			fr.hasRowIDs = true
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fragment: %w", err)
	}
	return fr, nil
}

func decodeDataFile(b []byte) (dataFile, error) {
	var df dataFile
	err := pb.Walk(b, func(p pb.Entry) error {
		var err error
		switch p.Num {
		case 1:
			err = p.Want(protowire.BytesType)
			df.path = string(p.B)
		case 2, 3:
			var vs []uint64
			if vs, err = p.Varints(nil); err != nil {
				return err
			}
			for _, v := range vs {
				i, err := pb.Int32Of(v)
				if err != nil {
					return err
				}
				if p.Num == 2 {
					df.fields = append(df.fields, i)
				} else {
					df.columns = append(df.columns, i)
				}
			}
		case 4:
			err = p.Want(protowire.VarintType)
			df.major = uint32(p.V)
		case 5:
			err = p.Want(protowire.VarintType)
			df.minor = uint32(p.V)
		case 6:
			err = p.Want(protowire.VarintType)
			df.size = p.V
		case 7:
			df.hasBaseID = true
		}
		return err
	})
	if err != nil {
		return df, fmt.Errorf("data file: %w", err)
	}
	if len(df.columns) != len(df.fields) && df.major >= 2 {
		return df, fmt.Errorf("data file %s: %d fields but %d column indices", df.path, len(df.fields), len(df.columns))
	}
	return df, nil
}

func decodeDeletionFile(b []byte) (*deletionFile, error) {
	d := &deletionFile{}
	err := pb.Walk(b, func(p pb.Entry) error {
		switch p.Num {
		case 1, 2, 3, 4:
			if err := p.Want(protowire.VarintType); err != nil {
				return err
			}
			*[]*uint64{&d.fileType, &d.readVersion, &d.id, &d.numDeleted}[p.Num-1] = p.V
		case 7:
			d.hasBaseID = true
		}
		return nil
	})
	return d, err
}

func (df *dataFile) encode() []byte {
	var b []byte
	b = pb.AppendString(b, 1, df.path)
	b = pb.AppendPacked(b, 2, sext(df.fields))
	b = pb.AppendPacked(b, 3, sext(df.columns))
	b = pb.AppendUint(b, 4, uint64(df.major))
	b = pb.AppendUint(b, 5, uint64(df.minor))
	b = pb.AppendUint(b, 6, df.size)
	return b
}

func sext(vs []int32) []uint64 {
	out := make([]uint64, len(vs))
	for i, v := range vs {
		out[i] = uint64(int64(v))
	}
	return out
}

// encode returns the DataFragment message. withID is false inside Append and
// Overwrite transactions, where Lance leaves ids to be assigned at commit.
func (fr *fragment) encode(withID bool) []byte {
	if fr.raw != nil && withID {
		return fr.raw
	}
	var b []byte
	if withID {
		b = pb.AppendUint(b, 1, fr.id)
	}
	for i := range fr.files {
		b = pb.AppendMessage(b, 2, fr.files[i].encode())
	}
	b = pb.AppendUint(b, 4, fr.physicalRows)
	return b
}

// encodeFile builds the complete manifest file for m, placing the carried
// index section and the inline transaction before the manifest.
func (m *Manifest) encodeFile() []byte {
	var body []byte
	var idxPos, txnPos uint64
	if m.indexSection != nil {
		idxPos = uint64(len(body))
		body = binary.LittleEndian.AppendUint32(body, uint32(len(m.indexSection)))
		body = append(body, m.indexSection...)
	}
	if m.transaction != nil {
		txnPos = uint64(len(body))
		body = binary.LittleEndian.AppendUint32(body, uint32(len(m.transaction)))
		body = append(body, m.transaction...)
	}
	var b []byte
	for _, f := range m.fields {
		b = pb.AppendMessage(b, 1, f.Encode())
	}
	for _, fr := range m.fragments {
		b = pb.AppendMessage(b, 2, fr.encode(true))
	}
	b = pb.AppendUint(b, 3, m.version)
	b = pb.AppendMessage(b, 7, pb.AppendUint(pb.AppendUint(nil, 1, uint64(m.timestamp.Unix())), 2, uint64(m.timestamp.Nanosecond())))
	if m.hasMaxFragment {
		b = pb.AppendUintAlways(b, 11, uint64(m.maxFragmentID))
	}
	b = pb.AppendMessage(b, 13, pb.AppendString(pb.AppendString(nil, 1, writerLibrary), 2, writerLibraryVersion))
	b = pb.AppendMessage(b, 15, pb.AppendString(pb.AppendString(nil, 1, m.dataFormat), 2, m.dataVersion))
	b = pb.AppendUint(b, 9, m.readerFlags)
	b = pb.AppendUint(b, 10, m.writerFlags)
	b = pb.AppendStringMap(b, 16, m.config)
	b = append(b, m.carried...)
	if m.indexSection != nil {
		b = pb.AppendUintAlways(b, 6, idxPos)
	}
	b = pb.AppendString(b, 12, m.transactionFile)
	if m.transaction != nil {
		// 21, not 23: Lance 14 still reads 21 when 23 is absent, older
		// Lance reads only 21.
		b = pb.AppendUintAlways(b, 21, txnPos)
	}
	pos := uint64(len(body))
	body = binary.LittleEndian.AppendUint32(body, uint32(len(b)))
	body = append(body, b...)
	body = binary.LittleEndian.AppendUint64(body, pos)
	body = binary.LittleEndian.AppendUint16(body, manifestFooterMajorZero)
	body = binary.LittleEndian.AppendUint16(body, manifestFooterVersion)
	return append(body, file.Magic...)
}

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
		maxID = max(maxID, f.Id)
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
