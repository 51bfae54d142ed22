package encoding

import (
	"fmt"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/persisting/persisting/core/lance/pb"
)

// Field is one lance.file.Field (§5). The dataset schema is the pre-order
// list of fields in Manifest.fields; parent_id links children to parents.
type Field struct {
	ID       int32
	ParentID int32
	Name     string
	Logical  string
	Nullable bool
	Metadata map[string][]byte
	// Raw is the Field message as read from disk. A carried-forward field is
	// re-emitted from Raw so that attributes this package does not model
	// (legacy encoding, dictionary, primary-key flags) survive our commits.
	Raw      []byte
	Children []*Field
	Type     arrow.DataType
}

// maxSchemaDepth bounds nesting so that corrupt manifests cannot make schema
// resolution recurse without end.
const maxSchemaDepth = 64

// DecodeField decodes one lance.file.Field, keeping its bytes in Raw.
func DecodeField(b []byte) (*Field, error) {
	f := &Field{Raw: b, ParentID: 0}
	err := pb.Walk(b, func(p pb.Entry) error {
		var err error
		var v []byte
		switch p.Num {
		case pb.FieldName:
			v, err = p.Bytes()
			f.Name = string(v)
		case pb.FieldID:
			f.ID, err = p.Int32()
		case pb.FieldParentID:
			f.ParentID, err = p.Int32()
		case pb.FieldLogicalType:
			v, err = p.Bytes()
			f.Logical = string(v)
		case pb.FieldNullable:
			var n uint64
			n, err = p.Uint()
			f.Nullable = n != 0
		case pb.FieldMetadata:
			var k string
			if k, v, err = p.MapEntry(); err == nil {
				if f.Metadata == nil {
					f.Metadata = map[string][]byte{}
				}
				f.Metadata[k] = v
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("field: %w", err)
	}
	return f, nil
}

// Encode returns the Field message body: the stored bytes of a field read
// from disk, so that attributes this package does not model survive.
func (f *Field) Encode() []byte {
	if f.Raw != nil {
		return f.Raw
	}
	var b []byte
	b = pb.AppendString(b, pb.FieldName, f.Name)
	b = pb.AppendInt32(b, pb.FieldID, f.ID)
	// parent_id is always written: -1 marks a top-level field and 0 is a
	// valid parent id.
	b = pb.AppendInt32Always(b, pb.FieldParentID, f.ParentID)
	b = pb.AppendString(b, pb.FieldLogicalType, f.Logical)
	b = pb.AppendBool(b, pb.FieldNullable, f.Nullable)
	return pb.AppendBytesMap(b, pb.FieldMetadata, f.Metadata)
}

func (f *Field) arrowField() arrow.Field {
	af := arrow.Field{Name: f.Name, Type: f.Type, Nullable: f.Nullable}
	if len(f.Metadata) > 0 {
		keys := make([]string, 0, len(f.Metadata))
		for k := range f.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		vals := make([]string, len(keys))
		for i, k := range keys {
			vals[i] = string(f.Metadata[k])
		}
		af.Metadata = arrow.NewMetadata(keys, vals)
	}
	return af
}

// Schema is the field tree of one manifest or one data file.
type Schema struct {
	Top  []*Field
	All  []*Field // pre-order, as stored
	ByID map[int32]*Field
}

// BuildSchema links a pre-order field list into a tree and resolves Arrow
// types. A child must come after its parent (Lance writes pre-order).
func BuildSchema(flat []*Field) (*Schema, error) {
	s := &Schema{All: flat, ByID: make(map[int32]*Field, len(flat))}
	for _, f := range flat {
		f.Children = nil
	}
	for _, f := range flat {
		if _, dup := s.ByID[f.ID]; dup {
			return nil, fmt.Errorf("lance: duplicate field id %d", f.ID)
		}
		s.ByID[f.ID] = f
		if f.ParentID == -1 {
			s.Top = append(s.Top, f)
			continue
		}
		p, ok := s.ByID[f.ParentID]
		if !ok {
			return nil, fmt.Errorf("lance: field %q (id %d) has unknown parent %d", f.Name, f.ID, f.ParentID)
		}
		p.Children = append(p.Children, f)
	}
	for _, f := range s.Top {
		if err := resolveType(f, 0); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func resolveType(f *Field, depth int) error {
	if depth > maxSchemaDepth {
		return fmt.Errorf("lance: field %q nested deeper than %d", f.Name, maxSchemaDepth)
	}
	kids := make([]arrow.Field, len(f.Children))
	for i, c := range f.Children {
		if err := resolveType(c, depth+1); err != nil {
			return err
		}
		kids[i] = c.arrowField()
	}
	t, err := arrowTypeOf(f.Logical, kids)
	if err != nil {
		return fmt.Errorf("field %q (id %d): %w", f.Name, f.ID, err)
	}
	if t.ID() != arrow.STRUCT && t.ID() != arrow.LIST && t.ID() != arrow.LARGE_LIST && len(f.Children) > 0 {
		return fmt.Errorf("lance: field %q (id %d) of type %s has children", f.Name, f.ID, f.Logical)
	}
	f.Type = t
	return nil
}

func (s *Schema) ArrowSchema(meta map[string][]byte) *arrow.Schema {
	fs := make([]arrow.Field, len(s.Top))
	for i, f := range s.Top {
		fs[i] = f.arrowField()
	}
	if len(meta) == 0 {
		return arrow.NewSchema(fs, nil)
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = string(meta[k])
	}
	md := arrow.NewMetadata(keys, vals)
	return arrow.NewSchema(fs, &md)
}

// FieldsFromArrow converts Arrow fields to Lance fields, assigning ids
// depth-first pre-order starting at *next, as Lance does at creation (§6).
func FieldsFromArrow(afs []arrow.Field, next *int32, parent int32, depth int) ([]*Field, error) {
	if depth > maxSchemaDepth {
		return nil, fmt.Errorf("lance: schema nested deeper than %d", maxSchemaDepth)
	}
	var out []*Field
	for _, af := range afs {
		lt, err := LogicalType(af.Type)
		if err != nil {
			return nil, fmt.Errorf("lance: column %q: %w", af.Name, err)
		}
		f := &Field{ID: *next, ParentID: parent, Name: af.Name, Logical: lt, Nullable: af.Nullable}
		*next++
		if af.HasMetadata() {
			f.Metadata = map[string][]byte{}
			for i, k := range af.Metadata.Keys() {
				f.Metadata[k] = []byte(af.Metadata.Values()[i])
			}
		}
		var kids []arrow.Field
		switch t := af.Type.(type) {
		case *arrow.StructType:
			kids = t.Fields()
		case *arrow.ListType:
			kids = []arrow.Field{t.ElemField()}
		case *arrow.LargeListType:
			kids = []arrow.Field{t.ElemField()}
		}
		sub, err := FieldsFromArrow(kids, next, f.ID, depth+1)
		if err != nil {
			return nil, err
		}
		for _, c := range sub {
			if c.ParentID == f.ID {
				f.Children = append(f.Children, c)
			}
		}
		out = append(out, f)
		out = append(out, sub...)
	}
	return out, nil
}

// TopOf returns the top-level fields of a pre-order list.
func TopOf(all []*Field) []*Field {
	var top []*Field
	for _, f := range all {
		if f.ParentID == -1 {
			top = append(top, f)
		}
	}
	return top
}

// Subtree returns f and all its descendants in pre-order.
func Subtree(f *Field) []*Field {
	out := []*Field{f}
	for _, c := range f.Children {
		out = append(out, Subtree(c)...)
	}
	return out
}

// Copy is a shallow copy of f without children; the Field message itself
// (Raw) is unchanged, only the fields linked below it differ.
func (f *Field) Copy() *Field {
	c := *f
	c.Children = nil
	return &c
}
