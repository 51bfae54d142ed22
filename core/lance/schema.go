package lance

import (
	"fmt"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/protobuf/encoding/protowire"
)

// field is one lance.file.Field (§5). The dataset schema is the pre-order
// list of fields in Manifest.fields; parent_id links children to parents.
type field struct {
	id       int32
	parentID int32
	name     string
	logical  string
	nullable bool
	metadata map[string][]byte
	// raw is the Field message as read from disk. A carried-forward field is
	// re-emitted from raw so that attributes this package does not model
	// (legacy encoding, dictionary, primary-key flags) survive our commits.
	raw      []byte
	children []*field
	typ      arrow.DataType
}

// maxSchemaDepth bounds nesting so that corrupt manifests cannot make schema
// resolution recurse without end.
const maxSchemaDepth = 64

func decodeField(b []byte) (*field, error) {
	f := &field{raw: b, parentID: 0}
	err := pbWalk(b, func(p pbField) error {
		var err error
		switch p.num {
		case 2:
			err = p.want(protowire.BytesType)
			f.name = string(p.b)
		case 3:
			if err = p.want(protowire.VarintType); err == nil {
				f.id, err = int32Of(p.v)
			}
		case 4:
			if err = p.want(protowire.VarintType); err == nil {
				f.parentID, err = int32Of(p.v)
			}
		case 5:
			err = p.want(protowire.BytesType)
			f.logical = string(p.b)
		case 6:
			err = p.want(protowire.VarintType)
			f.nullable = p.v != 0
		case 10:
			var k string
			var v []byte
			k, v, err = p.mapEntry()
			if err == nil {
				if f.metadata == nil {
					f.metadata = map[string][]byte{}
				}
				f.metadata[k] = v
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("field: %w", err)
	}
	return f, nil
}

// encode returns the Field message body.
func (f *field) encode() []byte {
	if f.raw != nil {
		return f.raw
	}
	var b []byte
	b = pbString(b, 2, f.name)
	b = pbInt32(b, 3, f.id)
	// parent_id is always written: -1 marks a top-level field and 0 is a
	// valid parent id.
	b = pbUintAlways(b, 4, uint64(int64(f.parentID)))
	b = pbString(b, 5, f.logical)
	b = pbBool(b, 6, f.nullable)
	keys := make([]string, 0, len(f.metadata))
	for k := range f.metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b = pbMsg(b, 10, pbBytes(pbString(nil, 1, k), 2, f.metadata[k]))
	}
	return b
}

func (f *field) arrowField() arrow.Field {
	af := arrow.Field{Name: f.name, Type: f.typ, Nullable: f.nullable}
	if len(f.metadata) > 0 {
		keys := make([]string, 0, len(f.metadata))
		for k := range f.metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		vals := make([]string, len(keys))
		for i, k := range keys {
			vals[i] = string(f.metadata[k])
		}
		af.Metadata = arrow.NewMetadata(keys, vals)
	}
	return af
}

// schema is the field tree of one manifest or one data file.
type schema struct {
	top  []*field
	all  []*field // pre-order, as stored
	byID map[int32]*field
}

// buildSchema links a pre-order field list into a tree and resolves Arrow
// types. A child must come after its parent (Lance writes pre-order).
func buildSchema(flat []*field) (*schema, error) {
	s := &schema{all: flat, byID: make(map[int32]*field, len(flat))}
	for _, f := range flat {
		f.children = nil
	}
	for _, f := range flat {
		if _, dup := s.byID[f.id]; dup {
			return nil, fmt.Errorf("lance: duplicate field id %d", f.id)
		}
		s.byID[f.id] = f
		if f.parentID == -1 {
			s.top = append(s.top, f)
			continue
		}
		p, ok := s.byID[f.parentID]
		if !ok {
			return nil, fmt.Errorf("lance: field %q (id %d) has unknown parent %d", f.name, f.id, f.parentID)
		}
		p.children = append(p.children, f)
	}
	for _, f := range s.top {
		if err := resolveType(f, 0); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func resolveType(f *field, depth int) error {
	if depth > maxSchemaDepth {
		return fmt.Errorf("lance: field %q nested deeper than %d", f.name, maxSchemaDepth)
	}
	kids := make([]arrow.Field, len(f.children))
	for i, c := range f.children {
		if err := resolveType(c, depth+1); err != nil {
			return err
		}
		kids[i] = c.arrowField()
	}
	t, err := arrowTypeOf(f.logical, kids)
	if err != nil {
		return fmt.Errorf("field %q (id %d): %w", f.name, f.id, err)
	}
	if t.ID() != arrow.STRUCT && t.ID() != arrow.LIST && t.ID() != arrow.LARGE_LIST && len(f.children) > 0 {
		return fmt.Errorf("lance: field %q (id %d) of type %s has children", f.name, f.id, f.logical)
	}
	f.typ = t
	return nil
}

func (s *schema) arrowSchema(meta map[string][]byte) *arrow.Schema {
	fs := make([]arrow.Field, len(s.top))
	for i, f := range s.top {
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

// fieldsFromArrow converts Arrow fields to Lance fields, assigning ids
// depth-first pre-order starting at *next, as Lance does at creation (§6).
func fieldsFromArrow(afs []arrow.Field, next *int32, parent int32, depth int) ([]*field, error) {
	if depth > maxSchemaDepth {
		return nil, fmt.Errorf("lance: schema nested deeper than %d", maxSchemaDepth)
	}
	var out []*field
	for _, af := range afs {
		lt, err := logicalType(af.Type)
		if err != nil {
			return nil, fmt.Errorf("lance: column %q: %w", af.Name, err)
		}
		f := &field{id: *next, parentID: parent, name: af.Name, logical: lt, nullable: af.Nullable}
		*next++
		if af.HasMetadata() {
			f.metadata = map[string][]byte{}
			for i, k := range af.Metadata.Keys() {
				f.metadata[k] = []byte(af.Metadata.Values()[i])
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
		sub, err := fieldsFromArrow(kids, next, f.id, depth+1)
		if err != nil {
			return nil, err
		}
		for _, c := range sub {
			if c.parentID == f.id {
				f.children = append(f.children, c)
			}
		}
		out = append(out, f)
		out = append(out, sub...)
	}
	return out, nil
}

// topOf returns the top-level fields of a pre-order list.
func topOf(all []*field) []*field {
	var top []*field
	for _, f := range all {
		if f.parentID == -1 {
			top = append(top, f)
		}
	}
	return top
}

// subtree returns f and all its descendants in pre-order.
func subtree(f *field) []*field {
	out := []*field{f}
	for _, c := range f.children {
		out = append(out, subtree(c)...)
	}
	return out
}
