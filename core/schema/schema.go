// Package schema owns a bucket's table schema and its evolution: it unifies an
// incoming Arrow schema with the table's, and conforms batches written under an
// older schema to a newer one.
//
// The evolution rules (new fields become nullable, int64 widens to float64, a
// null-typed column takes the first concrete type, structs evolve field by
// field) are monotonic: every unified schema can represent every batch accepted
// under an earlier one. The engine relies on that to conform buffered batches
// lazily instead of rewriting them on every change.
package schema

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
)

// Error is a change that cannot be made safely, such as int to string. It
// names the field path and both types so the user can see what to fix.
type Error struct {
	Field    string
	Table    arrow.DataType
	Incoming arrow.DataType
}

func (e *Error) Error() string {
	return fmt.Sprintf("field %q: the table has type %s, the record has %s; this change cannot be made safely (only new fields, int64 to float64 and null to a type are)",
		e.Field, e.Table, e.Incoming)
}

// Unify returns the schema that holds both the table's rows and the incoming
// ones. A nil table means an empty table. Field order is the table's, then
// new fields in the incoming order. changed reports whether the result
// differs from table.
func Unify(table, incoming *arrow.Schema) (out *arrow.Schema, changed bool, err error) {
	if table == nil {
		fields := make([]arrow.Field, incoming.NumFields())
		for i, f := range incoming.Fields() {
			fields[i] = nullable(f)
		}
		return arrow.NewSchema(fields, nil), true, nil
	}
	fields, changed, err := unifyFields("", table.Fields(), incoming.Fields())
	if err != nil {
		return nil, false, err
	}
	if !changed {
		return table, false, nil
	}
	md := table.Metadata()
	return arrow.NewSchema(fields, &md), true, nil
}

func unifyFields(prefix string, table, incoming []arrow.Field) ([]arrow.Field, bool, error) {
	out := make([]arrow.Field, len(table))
	copy(out, table)
	index := make(map[string]int, len(table))
	for i, f := range table {
		index[f.Name] = i
	}
	changed := false
	for _, in := range incoming {
		i, ok := index[in.Name]
		if !ok {
			index[in.Name] = len(out)
			out = append(out, nullable(in))
			changed = true
			continue
		}
		dt, c, err := unifyType(prefix+in.Name, out[i].Type, in.Type)
		if err != nil {
			return nil, false, err
		}
		if c {
			out[i].Type = dt
			changed = true
		}
	}
	return out, changed, nil
}

func unifyType(path string, table, in arrow.DataType) (arrow.DataType, bool, error) {
	if arrow.TypeEqual(table, in) || in.ID() == arrow.NULL {
		return table, false, nil
	}
	if table.ID() == arrow.NULL {
		return in, true, nil
	}
	switch t := table.(type) {
	case *arrow.Int64Type:
		if in.ID() == arrow.FLOAT64 {
			return arrow.PrimitiveTypes.Float64, true, nil
		}
	case *arrow.Float64Type:
		if in.ID() == arrow.INT64 {
			return table, false, nil // ints are stored as floats
		}
	case *arrow.StructType:
		if s, ok := in.(*arrow.StructType); ok {
			fields, c, err := unifyFields(path+".", t.Fields(), s.Fields())
			if err != nil || !c {
				return table, false, err
			}
			return arrow.StructOf(fields...), true, nil
		}
	case *arrow.TimestampType:
		// Arrow stores instants in UTC; the zone is a label. Aware values in
		// another zone keep their instant and take the table's zone. Naive
		// and aware values do not mix.
		if ts, ok := in.(*arrow.TimestampType); ok && ts.Unit == t.Unit && ts.TimeZone != "" && t.TimeZone != "" {
			return table, false, nil
		}
	case *arrow.ListType:
		if l, ok := in.(*arrow.ListType); ok {
			elem, c, err := unifyType(path+"[]", t.Elem(), l.Elem())
			if err != nil || !c {
				return table, false, err
			}
			return arrow.ListOf(elem), true, nil
		}
	}
	return nil, false, &Error{Field: path, Table: table, Incoming: in}
}

// Nullable fields only: a later record may omit any key.
func nullable(f arrow.Field) arrow.Field {
	f.Nullable = true
	return f
}
