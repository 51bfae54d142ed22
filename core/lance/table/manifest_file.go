package table

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

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

// sectionOffsets are the manifest's pointers to the sections before it.
type sectionOffsets struct {
	index, txn, txn23 *uint64
}

func parseManifest(data []byte, path string) (*Manifest, error) {
	errAt := func(off uint64, format string, args ...any) error {
		return fmt.Errorf("lance: %s at offset %d: %s", path, off, fmt.Sprintf(format, args...))
	}
	pos, n, err := manifestPosition(data, errAt)
	if err != nil {
		return nil, err
	}
	m := &Manifest{config: map[string]string{}}
	var offs sectionOffsets
	err = pb.Walk(data[pos+4:pos+4+n], func(p pb.Entry) error { return m.decodeField(p, &offs) })
	if err != nil {
		return nil, fmt.Errorf("lance: %s at offset %d: %w", path, pos+4, err)
	}
	if offs.txn23 != nil {
		offs.txn = offs.txn23
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
	if offs.index != nil {
		if m.indexSection, err = section(*offs.index, "index"); err != nil {
			return nil, err
		}
	}
	if offs.txn != nil {
		if m.transaction, err = section(*offs.txn, "transaction"); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// manifestPosition checks the footer and returns the position and length
// of the Manifest message.
func manifestPosition(data []byte, errAt func(uint64, string, ...any) error) (pos, n uint64, err error) {
	size := uint64(len(data))
	if size < manifestFooterLen+4 {
		return 0, 0, errAt(0, "file of %d bytes is too short for a manifest", size)
	}
	foot := data[size-manifestFooterLen:]
	if !bytes.Equal(foot[12:], file.Magic) {
		return 0, 0, errAt(size-4, "bad magic %q", foot[12:])
	}
	pos = binary.LittleEndian.Uint64(foot)
	if pos > size-manifestFooterLen-4 {
		return 0, 0, errAt(size-manifestFooterLen, "manifest position %d beyond the file", pos)
	}
	n = uint64(binary.LittleEndian.Uint32(data[pos:]))
	// Lance requires the manifest to end exactly at the footer.
	if n != size-manifestFooterLen-4-pos {
		return 0, 0, errAt(pos, "manifest length %d does not end at the footer (%d)", n, size-manifestFooterLen)
	}
	return pos, n, nil
}

// decodeField decodes one top-level field of the Manifest message into m,
// keeping the raw bytes of the fields carried forward (carriedField).
func (m *Manifest) decodeField(p pb.Entry, offs *sectionOffsets) error {
	var err error
	var b []byte
	switch p.Num {
	case pb.ManifestFields:
		if b, err = p.Bytes(); err == nil {
			var f *encoding.Field
			if f, err = encoding.DecodeField(b); err == nil {
				m.fields = append(m.fields, f)
			}
		}
	case pb.ManifestFragments:
		if b, err = p.Bytes(); err == nil {
			var fr *fragment
			if fr, err = decodeFragment(b); err == nil {
				m.fragments = append(m.fragments, fr)
			}
		}
	case pb.ManifestVersion:
		m.version, err = p.Uint()
	case pb.ManifestSchemaMetadata:
		var k string
		if k, b, err = p.MapEntry(); err == nil {
			if m.schemaMetadata == nil {
				m.schemaMetadata = map[string][]byte{}
			}
			m.schemaMetadata[k] = b
			m.carried = append(m.carried, p.Raw...)
		}
	case pb.ManifestIndexSection:
		offs.index, err = uintPtr(p)
	case pb.ManifestTimestamp:
		if b, err = p.Bytes(); err == nil {
			m.timestamp, err = decodeTimestamp(b)
		}
	case pb.ManifestReaderFeatureFlags:
		m.readerFlags, err = p.Uint()
	case pb.ManifestWriterFeatureFlags:
		m.writerFlags, err = p.Uint()
	case pb.ManifestMaxFragmentID:
		var v uint64
		v, err = p.Uint()
		m.maxFragmentID, m.hasMaxFragment = uint32(v), true
	case pb.ManifestTransactionFile:
		b, err = p.Bytes()
		m.transactionFile = string(b)
	case pb.ManifestDataFormat:
		if b, err = p.Bytes(); err == nil {
			err = pb.Walk(b, func(q pb.Entry) error {
				switch q.Num {
				case pb.DataStorageFormatFileFormat:
					m.dataFormat = string(q.B)
				case pb.DataStorageFormatVersion:
					m.dataVersion = string(q.B)
				}
				return nil
			})
		}
	case pb.ManifestConfig:
		var k string
		if k, b, err = p.MapEntry(); err == nil {
			m.config[k] = string(b)
		}
	case pb.ManifestBasePaths:
		m.hasBasePaths = true
		m.carried = append(m.carried, p.Raw...)
	case pb.ManifestTransactionSectionOld:
		offs.txn, err = uintPtr(p)
	case pb.ManifestTransactionSection:
		// Lance 14 writes the inline transaction's offset here (the old
		// number is then transaction_section_deprecated) and prefers it.
		offs.txn23, err = uintPtr(p)
	default:
		if carriedField(p.Num) {
			m.carried = append(m.carried, p.Raw...)
		}
	}
	return err
}

func uintPtr(p pb.Entry) (*uint64, error) {
	v, err := p.Uint()
	return &v, err
}

func decodeTimestamp(b []byte) (time.Time, error) {
	var secs, nanos int64
	err := pb.Walk(b, func(p pb.Entry) error {
		v, err := p.Uint()
		if err != nil {
			return err
		}
		switch p.Num {
		case pb.TimestampSeconds:
			secs = int64(v)
		case pb.TimestampNanos:
			nanos = int64(int32(v))
		}
		return nil
	})
	return time.Unix(secs, nanos).UTC(), err
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
	b := m.encode(idxPos, txnPos)
	pos := uint64(len(body))
	body = binary.LittleEndian.AppendUint32(body, uint32(len(b)))
	body = append(body, b...)
	body = binary.LittleEndian.AppendUint64(body, pos)
	body = binary.LittleEndian.AppendUint16(body, manifestFooterMajorZero)
	body = binary.LittleEndian.AppendUint16(body, manifestFooterVersion)
	return append(body, file.Magic...)
}

// encode returns the Manifest message, given the offsets of the sections.
func (m *Manifest) encode(idxPos, txnPos uint64) []byte {
	b := appendFields(nil, pb.ManifestFields, m.fields)
	for _, fr := range m.fragments {
		b = pb.AppendMessage(b, pb.ManifestFragments, fr.encode(true))
	}
	b = pb.AppendUint(b, pb.ManifestVersion, m.version)
	ts := pb.AppendUint(nil, pb.TimestampSeconds, uint64(m.timestamp.Unix()))
	ts = pb.AppendUint(ts, pb.TimestampNanos, uint64(m.timestamp.Nanosecond()))
	b = pb.AppendMessage(b, pb.ManifestTimestamp, ts)
	if m.hasMaxFragment {
		b = pb.AppendUintAlways(b, pb.ManifestMaxFragmentID, uint64(m.maxFragmentID))
	}
	wv := pb.AppendString(pb.AppendString(nil, pb.WriterVersionLibrary, writerLibrary), pb.WriterVersionVersion, writerLibraryVersion)
	b = pb.AppendMessage(b, pb.ManifestWriterVersion, wv)
	df := pb.AppendString(pb.AppendString(nil, pb.DataStorageFormatFileFormat, m.dataFormat), pb.DataStorageFormatVersion, m.dataVersion)
	b = pb.AppendMessage(b, pb.ManifestDataFormat, df)
	b = pb.AppendUint(b, pb.ManifestReaderFeatureFlags, m.readerFlags)
	b = pb.AppendUint(b, pb.ManifestWriterFeatureFlags, m.writerFlags)
	b = pb.AppendStringMap(b, pb.ManifestConfig, m.config)
	b = append(b, m.carried...)
	if m.indexSection != nil {
		b = pb.AppendUintAlways(b, pb.ManifestIndexSection, idxPos)
	}
	b = pb.AppendString(b, pb.ManifestTransactionFile, m.transactionFile)
	if m.transaction != nil {
		// The old number, not ManifestTransactionSection: Lance 14 still
		// reads it when the new one is absent, older Lance reads only it.
		b = pb.AppendUintAlways(b, pb.ManifestTransactionSectionOld, txnPos)
	}
	return b
}

// appendFields appends each field as one repeated message num.
func appendFields(b []byte, num pb.Number, fs []*encoding.Field) []byte {
	for _, f := range fs {
		b = pb.AppendMessage(b, num, f.Encode())
	}
	return b
}
