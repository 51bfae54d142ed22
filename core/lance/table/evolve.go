package table

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	tableschema "github.com/persisting/persisting/core/schema"

	"github.com/persisting/persisting/core/lance/encoding"
)

// Schema evolution on append (§11). A record may carry a column whose type
// evolved from the dataset's under the engine's rules (core/schema): a
// null-typed field takes a real type, int64 widens to double, a struct gains
// fields, a list's item evolves by the same rules. evolve computes the field
// tree that stores both the existing rows and the record's, and how it gets
// onto disk:
//
//   - Metadata only: a new field (new id) that no existing file holds. Old
//     fragments read it as NULL. Used for new columns, new struct children at
//     any depth (also inside list<struct>), and for a null-typed field taking
//     a real type (its old values are all NULL; the old id stays in old files
//     and is ignored). Not for struct-typed fields, which must not read as
//     NULL (nullStruct): a new top-level struct column gets extra files of
//     empty structs under its new id.
//   - Rewrite: the stored values must change (int64 -> double anywhere in the
//     column, the item of a list going from null to a type, a new or
//     formerly null-typed struct below the top level). The whole
//     top-level column gets new field ids under the same names; every existing
//     fragment gets one extra data file holding the converted column for all
//     of its physical rows (deleted ones included); the old ids stay in the
//     old files and are ignored. A 2.0 page has no type of its own, so
//     reinterpreting the old column under the new type is not possible.
//
// Lance's own add_columns refuses new struct children on 2.0 datasets because
// it would write them as [struct, child] files, which 2.0 compaction cannot
// rewrite; the metadata-only form used here has no such file, and Lance
// (pylance 14) reads, filters, compacts, deletes from and appends to such
// datasets (tests_go/lance/evolve_pylance_test.go).

// evolution says how a field's storage changes.
type evolution struct {
	changed bool // the schema changes: some field below is new
	rewrite bool // existing values must be rewritten under new ids
}

func (e *evolution) add(o evolution) {
	e.changed = e.changed || o.changed
	e.rewrite = e.rewrite || o.rewrite
}

// newID marks a field that has no id yet (assignIDs gives it one).
const newID = -1

// evolve returns the field that holds both df's values and af's. Nodes that
// keep their id are df's own nodes (shared, never modified); changed nodes are
// copies; new nodes have id newID. itemOfList says df is the item of a list,
// hasRows that the dataset has rows (new fields must then be nullable).
func evolve(df *encoding.Field, af arrow.Field, path string, itemOfList, hasRows bool) (*encoding.Field, evolution, error) {
	if af.Type.ID() == arrow.NULL {
		return df, evolution{}, nil // nothing new: the record's values are NULL
	}
	if df.Logical == "null" {
		return evolveNull(df, af, itemOfList, hasRows)
	}
	switch df.Type.ID() {
	case arrow.STRUCT:
		st, ok := af.Type.(*arrow.StructType)
		if !ok {
			return nil, evolution{}, mismatch(df, af, path)
		}
		return evolveStruct(df, st, path, hasRows)
	case arrow.LIST, arrow.LARGE_LIST:
		lt, ok := af.Type.(arrow.ListLikeType)
		if !ok || af.Type.ID() != df.Type.ID() || len(df.Children) != 1 {
			return nil, evolution{}, mismatch(df, af, path)
		}
		nc, ev, err := evolve(df.Children[0], lt.ElemField(), path+"[]", true, hasRows)
		if err != nil || !ev.changed {
			return df, ev, err
		}
		out := df.Copy()
		out.Children = []*encoding.Field{nc}
		return out, ev, nil
	}
	return evolveLeaf(df, af, path)
}

func mismatch(df *encoding.Field, af arrow.Field, path string) error {
	return fmt.Errorf("%w: column %q is %s in the dataset but %s in the record; only new fields, int64 to double and null to a type can be stored",
		ErrSchemaMismatch, path, df.Type, af.Type)
}

// evolveNull gives a null-typed field the record's type.
func evolveNull(df *encoding.Field, af arrow.Field, itemOfList, hasRows bool) (*encoding.Field, evolution, error) {
	nf, err := newFieldTree(af)
	if err != nil {
		return nil, evolution{}, err
	}
	nf.ParentID = df.ParentID
	nf.Nullable = true
	// The item of a list has one slot per list item, which a reader
	// cannot size without the item column: rewrite the list instead.
	// A nested struct must be rewritten too (see nullStruct).
	nested := df.ParentID != -1
	return nf, evolution{changed: true, rewrite: itemOfList || nested && hasRows && nullStruct(af)}, nil
}

// evolveStruct evolves df's children that the record has, keeps the others,
// and adds the record's new ones after them.
func evolveStruct(df *encoding.Field, st *arrow.StructType, path string, hasRows bool) (*encoding.Field, evolution, error) {
	out := df.Copy()
	var ev evolution
	have := map[string]bool{}
	for _, c := range df.Children {
		have[c.Name] = true
		i, ok := st.FieldIdx(c.Name)
		if !ok {
			out.Children = append(out.Children, c)
			continue
		}
		nc, cev, err := evolve(c, st.Field(i), path+"."+c.Name, false, hasRows)
		if err != nil {
			return nil, evolution{}, err
		}
		out.Children = append(out.Children, nc)
		ev.add(cev)
	}
	for _, f := range st.Fields() {
		if have[f.Name] {
			continue
		}
		have[f.Name] = true
		nf, err := newFieldTree(f)
		if err != nil {
			return nil, evolution{}, fmt.Errorf("lance: column %q: %w", path+"."+f.Name, err)
		}
		nf.ParentID = df.ID
		nf.Nullable = nf.Nullable || hasRows
		out.Children = append(out.Children, nf)
		ev.changed = true
		ev.rewrite = ev.rewrite || hasRows && nullStruct(f)
	}
	if !ev.changed {
		return df, ev, nil
	}
	return out, ev, nil
}

// evolveLeaf: the same type, ints into a double column, or int64 widened
// to double (a rewrite).
func evolveLeaf(df *encoding.Field, af arrow.Field, path string) (*encoding.Field, evolution, error) {
	lt, err := encoding.LogicalType(af.Type)
	if err != nil {
		return nil, evolution{}, fmt.Errorf("lance: column %q: %w", path, err)
	}
	switch {
	case lt == df.Logical:
		return df, evolution{}, nil
	case df.Logical == "double" && af.Type.ID() == arrow.INT64:
		return df, evolution{}, nil // the record's ints are stored as doubles
	case df.Logical == "int64" && af.Type.ID() == arrow.FLOAT64:
		nf := &encoding.Field{ID: newID, ParentID: df.ParentID, Name: df.Name, Logical: "double",
			Nullable: df.Nullable, Metadata: df.Metadata}
		return nf, evolution{changed: true, rewrite: true}, nil
	}
	return nil, evolution{}, mismatch(df, af, path)
}

// nullStruct reports whether a field missing from a file would read as a
// NULL struct. Lance reads a field that no file of a fragment holds as NULL,
// but its 2.0 writer cannot store a NULL struct and refuses to rewrite such
// a fragment ("does not encode struct validity"), so compaction of the
// dataset would fail. Such fields are given values instead: a new top-level
// struct column gets an extra file of empty structs per fragment, a new
// struct inside a column makes the column rewritten.
func nullStruct(af arrow.Field) bool {
	return af.Type.ID() == arrow.STRUCT
}

// renumbered copies the tree of f with every node marked new: a rewritten
// column gets new field ids throughout (§11).
func renumbered(f *encoding.Field) *encoding.Field {
	c := *f
	c.ID, c.Raw, c.Children = newID, nil, nil
	for _, ch := range f.Children {
		c.Children = append(c.Children, renumbered(ch))
	}
	return &c
}

// newFieldTree converts an Arrow field to Lance fields marked new.
func newFieldTree(af arrow.Field) (*encoding.Field, error) {
	tmp := int32(0)
	fs, err := encoding.FieldsFromArrow([]arrow.Field{af}, &tmp, -1, 0)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		f.ID = newID
	}
	return fs[0], nil
}

// assignIDs gives the new nodes of f's tree ids from *next in pre-order, and
// links their children to them. Kept nodes are left untouched.
func assignIDs(f *encoding.Field, parent int32, next *int32) {
	if f.ID == newID {
		f.ID, f.ParentID = *next, parent
		*next++
	}
	for _, c := range f.Children {
		assignIDs(c, f.ID, next)
	}
}

// conform returns arr as an array of f's type (schema.ConformArray: ints
// become doubles, struct children are matched by name, list items are
// conformed likewise, a null-typed array becomes NULLs of f's type).
func conform(arr arrow.Array, f *encoding.Field) (arrow.Array, error) {
	c, err := tableschema.ConformArray(f.Name, arr, f.Type, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSchemaMismatch, err)
	}
	return c, nil
}
