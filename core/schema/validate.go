package schema

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// MaxDepth is the deepest nesting a batch may have: a top-level scalar column
// is depth 1, and every struct, list or fixed-size list level adds one. Far
// below the limits of Arrow IPC (the WAL frames), the Arrow C Data import and
// Lance readers, so a batch accepted here is one every later stage can handle.
const MaxDepth = 32

// MaxNameBytes bounds a field name, in UTF-8 bytes.
const MaxNameBytes = 256

// reservedNames are column names Lance gives a meaning of its own (row ids,
// row addresses, search scores, version columns): a data column with one of
// these names makes pylance's scans fail or answer with the wrong column.
var reservedNames = map[string]bool{
	"_rowid":                       true,
	"_rowaddr":                     true,
	"_rowoffset":                   true,
	"_row_created_at_version":      true,
	"_row_last_updated_at_version": true,
	"_distance":                    true,
	"_score":                       true,
	"_relevance_score":             true,
	"_fragid":                      true,
}

// InvalidError is a batch no stage of the pipeline could store faithfully:
// a field name Lance cannot address, nesting past MaxDepth, a type outside
// the mapping, or string data that is not UTF-8. Field is the path of the
// offending field ("a.b" for child b of struct a; "[]" for list items).
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return "invalid batch: " + e.Reason
	}
	return fmt.Sprintf("field %q: %s", e.Field, e.Reason)
}

// CheckName reports why name cannot be a field name, or "" if it can. The
// rules: non-empty, at most MaxNameBytes of valid UTF-8, no NUL (C strings
// would cut it), no '.' (Lance addresses nested fields with dotted paths),
// no '`' (Lance quotes path segments with it: pylance cannot read such a
// column back), and none of Lance's reserved column names.
func CheckName(name string) string {
	switch {
	case name == "":
		return "field names must not be empty"
	case !utf8.ValidString(name):
		return "field names must be valid UTF-8"
	case len(name) > MaxNameBytes:
		return fmt.Sprintf("field names are at most %d bytes, this one has %d", MaxNameBytes, len(name))
	case strings.ContainsRune(name, 0):
		return "field names must not contain NUL"
	case strings.ContainsRune(name, '.'):
		return "field names must not contain '.' (Lance addresses nested fields with dotted paths)"
	case strings.ContainsRune(name, '`'):
		return "field names must not contain '`' (Lance quotes field paths with it)"
	case reservedNames[name]:
		return "the name is reserved by Lance for a column of its own"
	}
	return ""
}

// ValidateSchema checks names, nesting and types of every field.
func ValidateSchema(sc *arrow.Schema) error {
	return validateFields("", sc.Fields(), 1)
}

func validateFields(prefix string, fields []arrow.Field, depth int) error {
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		path := joinPath(prefix, f.Name)
		if why := CheckName(f.Name); why != "" {
			return &InvalidError{Field: path, Reason: why}
		}
		if seen[f.Name] {
			return &InvalidError{Field: path, Reason: "the name appears twice"}
		}
		seen[f.Name] = true
		if err := validateType(path, f.Type, depth); err != nil {
			return err
		}
	}
	return nil
}

func validateType(path string, t arrow.DataType, depth int) error {
	if depth > MaxDepth {
		return &InvalidError{Field: path, Reason: fmt.Sprintf("nested deeper than %d levels", MaxDepth)}
	}
	switch t := t.(type) {
	case *arrow.StructType:
		if t.NumFields() == 0 {
			return &InvalidError{Field: path, Reason: "a struct needs at least one field (Lance cannot store an empty struct)"}
		}
		return validateFields(path, t.Fields(), depth+1)
	case *arrow.ListType:
		return validateType(path+"[]", t.Elem(), depth+1)
	case *arrow.LargeListType:
		return validateType(path+"[]", t.Elem(), depth+1)
	case *arrow.FixedSizeListType:
		if !fixedWidthNumeric(t.Elem()) || t.Len() <= 0 {
			return &InvalidError{Field: path, Reason: fmt.Sprintf("type %s: a fixed-size list needs a positive size and fixed-width numeric items", t)}
		}
		return nil
	}
	if !storable[t.ID()] {
		return &InvalidError{Field: path, Reason: fmt.Sprintf("arrow type %s cannot be stored", t)}
	}
	return nil
}

// storable are the non-nested Arrow types the Lance 2.0 writer maps.
var storable = map[arrow.Type]bool{
	arrow.NULL: true, arrow.BOOL: true,
	arrow.INT8: true, arrow.INT16: true, arrow.INT32: true, arrow.INT64: true,
	arrow.UINT8: true, arrow.UINT16: true, arrow.UINT32: true, arrow.UINT64: true,
	arrow.FLOAT16: true, arrow.FLOAT32: true, arrow.FLOAT64: true,
	arrow.STRING: true, arrow.LARGE_STRING: true, arrow.BINARY: true, arrow.LARGE_BINARY: true,
	arrow.DATE32: true, arrow.DATE64: true, arrow.TIMESTAMP: true,
	arrow.TIME32: true, arrow.TIME64: true, arrow.DURATION: true,
	arrow.DECIMAL128: true, arrow.FIXED_SIZE_BINARY: true,
}

func fixedWidthNumeric(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64:
		return true
	}
	return false
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// Validate checks a batch before anything is queued or logged: its schema
// (ValidateSchema) and its string data, which must be UTF-8 as Arrow
// requires (pylance and Python refuse to decode anything else).
func Validate(rec arrow.RecordBatch) error {
	if err := ValidateSchema(rec.Schema()); err != nil {
		return err
	}
	for i, f := range rec.Schema().Fields() {
		if err := validateUTF8(f.Name, rec.Column(i)); err != nil {
			return err
		}
	}
	return nil
}

func validateUTF8(path string, arr arrow.Array) error {
	switch a := arr.(type) {
	case *array.String:
		return checkStrings(path, a.ValueBytes(), a.ValueOffsets())
	case *array.LargeString:
		return checkStrings(path, a.ValueBytes(), a.ValueOffsets())
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		for i := 0; i < a.NumField(); i++ {
			if err := validateUTF8(joinPath(path, st.Field(i).Name), a.Field(i)); err != nil {
				return err
			}
		}
	case array.ListLike:
		return validateUTF8(path+"[]", a.ListValues())
	}
	return nil
}

// checkStrings validates the value bytes at once and then that no value
// starts inside a multi-byte sequence; together these mean every value is
// valid UTF-8 on its own, at the cost of one pass over the bytes. data is
// the values' bytes, starting at offsets[0].
func checkStrings[T int32 | int64](path string, data []byte, offsets []T) error {
	if len(offsets) < 2 {
		return nil
	}
	base := offsets[0]
	bad := !utf8.Valid(data)
	for _, o := range offsets {
		rel := int64(o - base)
		if rel < 0 || rel > int64(len(data)) {
			return &InvalidError{Field: path, Reason: "string offsets out of range"}
		}
		if !bad && rel < int64(len(data)) && !utf8.RuneStart(data[rel]) {
			bad = true
		}
	}
	if bad {
		return &InvalidError{Field: path, Reason: "string data is not valid UTF-8 (use a binary column for raw bytes)"}
	}
	return nil
}
