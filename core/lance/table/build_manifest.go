package table

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/persisting/persisting/core/lance/pb"
)

// manifest builds the next version on top of latest (nil: create).
func (a *appender) manifest(latest *Manifest, p *appendPlan, readVersion uint64) *Manifest {
	m := &Manifest{
		fields:      p.fields,
		version:     1,
		timestamp:   time.Now().UTC(),
		dataFormat:  dataFormatLance,
		dataVersion: dataStorageVersion20,
		config:      map[string]string{},
	}
	carriedWriterFlags := uint64(0)
	if latest != nil {
		m.version = latest.version + 1
		m.fragments = slices.Clone(latest.fragments)
		for i, fr := range m.fragments {
			if x := a.extra[fr.id]; x != nil {
				m.fragments[i] = fr.withFile(dataFile{path: x.file.name, fields: x.file.ids, columns: columnsOf(x.file.ids),
					major: dataFileMajor20, minor: dataFileMinor20, size: x.file.size})
			}
		}
		m.maxFragmentID, m.hasMaxFragment = latest.maxFragmentID, latest.hasMaxFragment
		m.config = maps.Clone(latest.config)
		m.schemaMetadata = latest.schemaMetadata
		m.carried = latest.carried
		m.indexSection = latest.indexSection
		carriedWriterFlags = latest.writerFlags & flagNoTransactionFile
	} else if md := a.rec.Schema().Metadata(); md.Len() > 0 {
		m.schemaMetadata = map[string][]byte{}
		for i, k := range md.Keys() {
			m.schemaMetadata[k] = []byte(md.Values()[i])
			m.carried = pb.AppendMessage(m.carried, pb.ManifestSchemaMetadata, pb.MapEntry(k, []byte(md.Values()[i])))
		}
	}
	maps.Copy(m.config, a.cfg)
	var ours *fragment
	if a.file != nil {
		id := uint64(0)
		if latest != nil {
			id = latest.nextFragmentID()
		}
		ours = &fragment{id: id, physicalRows: uint64(a.rec.NumRows()), files: []dataFile{{
			path: a.file.name, fields: a.file.ids, columns: columnsOf(a.file.ids),
			major: dataFileMajor20, minor: dataFileMinor20, size: a.file.size,
		}}}
		m.fragments = append(m.fragments, ours)
		m.maxFragmentID, m.hasMaxFragment = uint32(id), true
	}
	for _, fr := range m.fragments {
		if fr.deletion != nil {
			m.readerFlags |= flagDeletionFiles
		}
	}
	m.writerFlags = m.readerFlags | carriedWriterFlags
	if len(m.config) > 0 {
		m.writerFlags |= flagTableConfig
	}

	body := operationBody(p, m, ours)
	uuid := newUUID()
	m.transaction = encodeTransaction(readVersion, uuid, p.op, body)
	if carriedWriterFlags&flagNoTransactionFile == 0 {
		m.transactionFile = fmt.Sprintf("%d-%s.txn", readVersion, uuid)
	}
	return m
}

// columnsOf is column_indices for a 2.0 file holding ids: every field has its
// own column, in order.
func columnsOf(ids []int32) []int32 {
	cols := make([]int32, len(ids))
	for i := range cols {
		cols[i] = int32(i)
	}
	return cols
}
