package table

import (
	"fmt"
	"slices"

	"github.com/persisting/persisting/core/lance/pb"
)

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

func decodeFragment(b []byte) (*fragment, error) {
	fr := &fragment{raw: b}
	err := pb.Walk(b, func(p pb.Entry) error {
		var err error
		switch p.Num {
		case pb.FragmentID:
			fr.id, err = p.Uint()
		case pb.FragmentFiles:
			var body []byte
			if body, err = p.Bytes(); err == nil {
				var df dataFile
				if df, err = decodeDataFile(body); err == nil {
					fr.files = append(fr.files, df)
				}
			}
		case pb.FragmentDeletionFile:
			var body []byte
			if body, err = p.Bytes(); err == nil {
				fr.deletion, err = decodeDeletionFile(body)
			}
		case pb.FragmentPhysicalRows:
			fr.physicalRows, err = p.Uint()
		case pb.FragmentInlineRowIDs, pb.FragmentExternalRowIDs:
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
		var v uint64
		switch p.Num {
		case pb.DataFilePath:
			var path []byte
			path, err = p.Bytes()
			df.path = string(path)
		case pb.DataFileFields:
			df.fields, err = p.Int32s(df.fields)
		case pb.DataFileColumnIndices:
			df.columns, err = p.Int32s(df.columns)
		case pb.DataFileMajorVersion:
			v, err = p.Uint()
			df.major = uint32(v)
		case pb.DataFileMinorVersion:
			v, err = p.Uint()
			df.minor = uint32(v)
		case pb.DataFileSizeBytes:
			df.size, err = p.Uint()
		case pb.DataFileBaseID:
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
		var err error
		switch p.Num {
		case pb.DeletionFileType:
			d.fileType, err = p.Uint()
		case pb.DeletionFileReadVersion:
			d.readVersion, err = p.Uint()
		case pb.DeletionFileID:
			d.id, err = p.Uint()
		case pb.DeletionFileNumDeleted:
			d.numDeleted, err = p.Uint()
		case pb.DeletionFileBaseID:
			d.hasBaseID = true
		}
		return err
	})
	return d, err
}

func (df *dataFile) encode() []byte {
	var b []byte
	b = pb.AppendString(b, pb.DataFilePath, df.path)
	b = pb.AppendPacked(b, pb.DataFileFields, pb.SignExtend(df.fields))
	b = pb.AppendPacked(b, pb.DataFileColumnIndices, pb.SignExtend(df.columns))
	b = pb.AppendUint(b, pb.DataFileMajorVersion, uint64(df.major))
	b = pb.AppendUint(b, pb.DataFileMinorVersion, uint64(df.minor))
	b = pb.AppendUint(b, pb.DataFileSizeBytes, df.size)
	return b
}

// encode returns the DataFragment message. withID is false inside Append and
// Overwrite transactions, where Lance leaves ids to be assigned at commit.
func (fr *fragment) encode(withID bool) []byte {
	if fr.raw != nil && withID {
		return fr.raw
	}
	var b []byte
	if withID {
		b = pb.AppendUint(b, pb.FragmentID, fr.id)
	}
	for i := range fr.files {
		b = pb.AppendMessage(b, pb.FragmentFiles, fr.files[i].encode())
	}
	b = pb.AppendUint(b, pb.FragmentPhysicalRows, fr.physicalRows)
	return b
}

// withFile returns a copy of fr with one more data file. The stored message
// gets the file appended as one more repeated `files` entry, so everything
// else Lance stored in the fragment (deletion file, row id metadata, ...)
// is kept as is.
func (fr *fragment) withFile(df dataFile) *fragment {
	c := *fr
	c.files = append(slices.Clone(fr.files), df)
	if fr.raw != nil {
		c.raw = pb.AppendMessage(slices.Clone(fr.raw), pb.FragmentFiles, df.encode())
	}
	return &c
}
