package table

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/persisting/persisting/core/lance/encoding"
	"github.com/persisting/persisting/core/lance/pb"
)

// plan fits rec to the schema of latest (or creates the schema).
func (a *appender) plan(latest *Manifest) (*appendPlan, error) {
	rs := a.rec.Schema()
	seen := map[string]bool{}
	for _, f := range rs.Fields() {
		if seen[f.Name] {
			return nil, fmt.Errorf("%w: record has two columns named %q", ErrSchemaMismatch, f.Name)
		}
		seen[f.Name] = true
	}
	if latest == nil {
		return a.planCreate()
	}
	return a.planOnto(latest)
}

// planCreate plans the first version: the record's schema, ids from 0.
func (a *appender) planCreate() (*appendPlan, error) {
	rs := a.rec.Schema()
	next := int32(0)
	all, err := encoding.FieldsFromArrow(rs.Fields(), &next, -1, 0)
	if err != nil {
		return nil, err
	}
	if _, err := encoding.BuildSchema(all); err != nil {
		return nil, err
	}
	p := &appendPlan{fields: all, top: encoding.TopOf(all), srcCols: a.rec.Columns(), op: pb.OpOverwrite}
	p.fileIDs = idsOf(p.top)
	return p, p.conform()
}

// planOnto fits rec to the schema of latest.
func (a *appender) planOnto(latest *Manifest) (*appendPlan, error) {
	rs := a.rec.Schema()
	if err := latest.checkWritable(); err != nil {
		return nil, fmt.Errorf("lance: %s: %w", a.path, err)
	}
	s, err := encoding.BuildSchema(cloneFields(latest.fields))
	if err != nil {
		return nil, fmt.Errorf("lance: %s version %d: %w", a.path, latest.version, err)
	}
	hasRows := false
	for _, fr := range latest.fragments {
		hasRows = hasRows || fr.physicalRows > 0
	}
	nextID := latest.maxFieldID() + 1
	p := &appendPlan{op: pb.OpAppend, preservesNullability: true}
	newTop, used, err := a.fitExisting(p, s, hasRows, &nextID)
	if err != nil {
		return nil, err
	}
	for i, af := range rs.Fields() {
		if used[af.Name] {
			continue
		}
		nf, err := newFieldTree(af)
		if err != nil {
			return nil, err
		}
		// Existing fragments read the new column as NULL.
		nf.Nullable = nf.Nullable || hasRows
		assignIDs(nf, -1, &nextID)
		newTop = append(newTop, nf)
		p.top, p.srcCols = append(p.top, nf), append(p.srcCols, a.rec.Column(i))
		p.op = pb.OpMerge
	}
	for _, t := range newTop {
		p.fields = append(p.fields, encoding.Subtree(t)...)
	}
	if _, err := encoding.BuildSchema(p.fields); err != nil { // links the tree and resolves the new types
		return nil, err
	}
	for _, f := range p.fields {
		if _, old := s.ByID[f.ID]; !old && !f.Nullable {
			p.preservesNullability = false // only on a dataset without rows
		}
	}
	p.addStructRewrites(newTop, s, hasRows)
	p.fileIDs = idsOf(p.top)
	return p, p.conform()
}

// fitExisting fits the record's columns to the dataset's existing top-level
// columns s.Top (evolving them where the record's type evolved) and returns
// the new top-level list so far and the record columns used.
func (a *appender) fitExisting(p *appendPlan, s *encoding.Schema, hasRows bool, nextID *int32) ([]*encoding.Field, map[string]bool, error) {
	rs := a.rec.Schema()
	var newTop []*encoding.Field
	used := map[string]bool{}
	for _, df := range s.Top {
		idx := rs.FieldIndices(df.Name)
		if len(idx) == 0 {
			if !df.Nullable {
				return nil, nil, fmt.Errorf("%w: non-nullable column %q is missing from the record", ErrSchemaMismatch, df.Name)
			}
			newTop = append(newTop, df)
			if df.Type.ID() == arrow.STRUCT {
				// Empty structs rather than none (nullStruct).
				nulls := array.NewNull(int(a.rec.NumRows()))
				p.owned = append(p.owned, nulls)
				p.top, p.srcCols = append(p.top, df), append(p.srcCols, nulls)
			}
			continue
		}
		used[df.Name] = true
		af, col := rs.Field(idx[0]), a.rec.Column(idx[0])
		if af.Type.ID() == arrow.NULL && df.Type.ID() == arrow.STRUCT {
			// Written as empty structs rather than left out: a struct a
			// fragment lacks reads as NULL, which Lance cannot rewrite
			// (nullStruct).
			newTop = append(newTop, df)
			p.top, p.srcCols = append(p.top, df), append(p.srcCols, col)
			continue
		}
		nf, ev, err := evolve(df, af, df.Name, false, hasRows)
		if err != nil {
			return nil, nil, err
		}
		if ev.rewrite {
			// §11: the column gets new ids under the same name; every
			// existing fragment gets its converted values in an extra file.
			nf = renumbered(nf)
			p.rewrites = append(p.rewrites, rewrite{old: df, new: nf})
			p.preservesNullability = false // staged old-schema data would lose this column
		}
		assignIDs(nf, -1, nextID)
		if ev.changed {
			p.op = pb.OpMerge
		}
		newTop = append(newTop, nf)
		if af.Type.ID() == arrow.NULL {
			if !nf.Nullable {
				return nil, nil, fmt.Errorf("%w: column %q is non-nullable but the record has only nulls", ErrSchemaMismatch, df.Name)
			}
			continue // not written: reads as NULL
		}
		p.top, p.srcCols = append(p.top, nf), append(p.srcCols, col)
	}
	return newTop, used, nil
}

// addStructRewrites gives existing fragments empty structs under the id of
// every new struct column (nullStruct) not already rewritten.
func (p *appendPlan) addStructRewrites(newTop []*encoding.Field, s *encoding.Schema, hasRows bool) {
	rewritten := map[*encoding.Field]bool{}
	for _, rw := range p.rewrites {
		rewritten[rw.new] = true
	}
	for _, t := range newTop {
		if _, old := s.ByID[t.ID]; !old && hasRows && t.Type.ID() == arrow.STRUCT && !rewritten[t] {
			// A new struct column: existing fragments get empty structs
			// under its id (nullStruct).
			p.rewrites = append(p.rewrites, rewrite{new: t})
		}
	}
}

// conform converts the record's columns to the types of the fields they are
// written under.
func (p *appendPlan) conform() error {
	p.cols = make([]arrow.Array, 0, len(p.top))
	for i, f := range p.top {
		c, err := conform(p.srcCols[i], f)
		if err != nil {
			p.release()
			return err
		}
		p.cols = append(p.cols, c)
		if !f.Nullable && c.NullN() > 0 {
			p.release()
			return fmt.Errorf("%w: column %q is non-nullable but the record has %d nulls", ErrSchemaMismatch, f.Name, c.NullN())
		}
	}
	return nil
}

func (p *appendPlan) release() {
	for _, c := range append(p.cols, p.owned...) {
		c.Release()
	}
	p.cols, p.owned = nil, nil
}

// cloneFields copies a manifest's field list so that building a schema tree
// from it (which links children) leaves the manifest's fields alone.
func cloneFields(fs []*encoding.Field) []*encoding.Field {
	out := make([]*encoding.Field, len(fs))
	for i, f := range fs {
		out[i] = f.Copy()
	}
	return out
}

func idsOf(top []*encoding.Field) []int32 {
	var ids []int32
	for _, t := range top {
		for _, f := range encoding.Subtree(t) {
			ids = append(ids, f.ID)
		}
	}
	return ids
}
