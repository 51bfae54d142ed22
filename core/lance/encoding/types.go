package encoding

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// Logical type strings follow lance-core's datatypes.rs (§6). Lists and
// structs get their children from the schema tree, so only their own string
// is produced here; a fixed-size list has no child field and encodes its item
// type in the string.

var simpleLogical = map[arrow.Type]string{
	arrow.NULL:         "null",
	arrow.BOOL:         "bool",
	arrow.INT8:         "int8",
	arrow.INT16:        "int16",
	arrow.INT32:        "int32",
	arrow.INT64:        "int64",
	arrow.UINT8:        "uint8",
	arrow.UINT16:       "uint16",
	arrow.UINT32:       "uint32",
	arrow.UINT64:       "uint64",
	arrow.FLOAT16:      "halffloat",
	arrow.FLOAT32:      "float",
	arrow.FLOAT64:      "double",
	arrow.STRING:       "string",
	arrow.LARGE_STRING: "large_string",
	arrow.BINARY:       "binary",
	arrow.LARGE_BINARY: "large_binary",
	arrow.DATE32:       "date32:day",
	arrow.DATE64:       "date64:ms",
	arrow.STRUCT:       "struct",
	arrow.LIST:         "list",
	arrow.LARGE_LIST:   "large_list",
}

var logicalSimple = map[string]arrow.DataType{
	"null":         arrow.Null,
	"bool":         arrow.FixedWidthTypes.Boolean,
	"int8":         arrow.PrimitiveTypes.Int8,
	"int16":        arrow.PrimitiveTypes.Int16,
	"int32":        arrow.PrimitiveTypes.Int32,
	"int64":        arrow.PrimitiveTypes.Int64,
	"uint8":        arrow.PrimitiveTypes.Uint8,
	"uint16":       arrow.PrimitiveTypes.Uint16,
	"uint32":       arrow.PrimitiveTypes.Uint32,
	"uint64":       arrow.PrimitiveTypes.Uint64,
	"halffloat":    arrow.FixedWidthTypes.Float16,
	"float":        arrow.PrimitiveTypes.Float32,
	"double":       arrow.PrimitiveTypes.Float64,
	"string":       arrow.BinaryTypes.String,
	"large_string": arrow.BinaryTypes.LargeString,
	"binary":       arrow.BinaryTypes.Binary,
	"large_binary": arrow.BinaryTypes.LargeBinary,
	"date32:day":   arrow.FixedWidthTypes.Date32,
	"date64:ms":    arrow.FixedWidthTypes.Date64,
	"time32:s":     arrow.FixedWidthTypes.Time32s,
	"time32:ms":    arrow.FixedWidthTypes.Time32ms,
	"time64:us":    arrow.FixedWidthTypes.Time64us,
	"time64:ns":    arrow.FixedWidthTypes.Time64ns,
	"duration:s":   arrow.FixedWidthTypes.Duration_s,
	"duration:ms":  arrow.FixedWidthTypes.Duration_ms,
	"duration:us":  arrow.FixedWidthTypes.Duration_us,
	"duration:ns":  arrow.FixedWidthTypes.Duration_ns,
}

func unitString(u arrow.TimeUnit) string {
	switch u {
	case arrow.Second:
		return "s"
	case arrow.Millisecond:
		return "ms"
	case arrow.Microsecond:
		return "us"
	}
	return "ns"
}

func parseUnit(s string) (arrow.TimeUnit, bool) {
	switch s {
	case "s":
		return arrow.Second, true
	case "ms":
		return arrow.Millisecond, true
	case "us":
		return arrow.Microsecond, true
	case "ns":
		return arrow.Nanosecond, true
	}
	return 0, false
}

// LogicalType returns the Lance logical type string of an Arrow type.
func LogicalType(t arrow.DataType) (string, error) {
	switch t := t.(type) {
	case *arrow.TimestampType:
		tz := t.TimeZone
		if tz == "" {
			tz = "-"
		}
		return "timestamp:" + unitString(t.Unit) + ":" + tz, nil
	case *arrow.Time32Type:
		return "time32:" + unitString(t.Unit), nil
	case *arrow.Time64Type:
		return "time64:" + unitString(t.Unit), nil
	case *arrow.DurationType:
		return "duration:" + unitString(t.Unit), nil
	case *arrow.Decimal128Type:
		return fmt.Sprintf("decimal:128:%d:%d", t.Precision, t.Scale), nil
	case *arrow.FixedSizeBinaryType:
		return fmt.Sprintf("fixed_size_binary:%d", t.ByteWidth), nil
	case *arrow.FixedSizeListType:
		if !isFixedWidth(t.Elem()) || t.Elem().ID() == arrow.BOOL {
			return "", fmt.Errorf("%w: fixed_size_list of %s (only fixed-width numeric items)", ErrUnsupported, t.Elem())
		}
		item, err := LogicalType(t.Elem())
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("fixed_size_list:%s:%d", item, t.Len()), nil
	case *arrow.ListType:
		if t.Elem().ID() == arrow.STRUCT {
			return "list.struct", nil
		}
		return "list", nil
	case *arrow.LargeListType:
		if t.Elem().ID() == arrow.STRUCT {
			return "large_list.struct", nil
		}
		return "large_list", nil
	}
	if s := simpleLogical[t.ID()]; s != "" {
		return s, nil
	}
	return "", fmt.Errorf("%w: arrow type %s has no Lance 2.0 mapping", ErrUnsupported, t)
}

// arrowTypeOf resolves a logical type string. children are the Arrow fields of
// the Lance child fields (for list and struct).
func arrowTypeOf(logical string, children []arrow.Field) (arrow.DataType, error) {
	if t, ok := logicalSimple[logical]; ok {
		return t, nil
	}
	switch logical {
	case "struct":
		return arrow.StructOf(children...), nil
	case "list", "list.struct", "large_list", "large_list.struct":
		if len(children) != 1 {
			return nil, fmt.Errorf("lance: %s field has %d children, want 1", logical, len(children))
		}
		if strings.HasPrefix(logical, "large_") {
			return arrow.LargeListOfField(children[0]), nil
		}
		return arrow.ListOfField(children[0]), nil
	}
	parts := strings.Split(logical, ":")
	switch {
	case parts[0] == "timestamp" && len(parts) >= 3:
		u, ok := parseUnit(parts[1])
		if !ok {
			break
		}
		tz := strings.Join(parts[2:], ":") // a tz like "+01:00" contains colons
		if tz == "-" {
			tz = ""
		}
		return &arrow.TimestampType{Unit: u, TimeZone: tz}, nil
	case parts[0] == "decimal" && len(parts) == 4 && parts[1] == "128":
		p, err1 := strconv.Atoi(parts[2])
		s, err2 := strconv.Atoi(parts[3])
		if err1 != nil || err2 != nil || p < 1 || p > 38 {
			break
		}
		return &arrow.Decimal128Type{Precision: int32(p), Scale: int32(s)}, nil
	case parts[0] == "fixed_size_binary" && len(parts) == 2:
		n, err := strconv.Atoi(parts[1])
		if err != nil || n <= 0 {
			break
		}
		return &arrow.FixedSizeBinaryType{ByteWidth: n}, nil
	case parts[0] == "fixed_size_list" && len(parts) >= 3:
		n, err := strconv.Atoi(parts[len(parts)-1])
		if err != nil || n <= 0 {
			break
		}
		item, err := arrowTypeOf(strings.Join(parts[1:len(parts)-1], ":"), nil)
		if err != nil || !isFixedWidth(item) || item.ID() == arrow.BOOL {
			return nil, fmt.Errorf("%w: logical type %q", ErrUnsupported, logical)
		}
		// Lance recreates the item field as "item", nullable (§6).
		return arrow.FixedSizeListOfField(int32(n), arrow.Field{Name: "item", Type: item, Nullable: true}), nil
	}
	return nil, fmt.Errorf("%w: logical type %q", ErrUnsupported, logical)
}

// isFixedWidth reports whether values of t live in one fixed-width buffer
// (a 2.0 flat encoding), bool included (1 bit).
func isFixedWidth(t arrow.DataType) bool {
	if t.ID() == arrow.NULL || t.ID() == arrow.DICTIONARY || t.ID() == arrow.EXTENSION {
		return false
	}
	_, ok := t.(arrow.FixedWidthDataType)
	return ok
}

// bitWidth of a fixed-width type.
func bitWidth(t arrow.DataType) int {
	return t.(arrow.FixedWidthDataType).BitWidth()
}

func isBinaryLike(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.STRING, arrow.BINARY, arrow.LARGE_STRING, arrow.LARGE_BINARY:
		return true
	}
	return false
}

func isLargeOffsets(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.LARGE_STRING, arrow.LARGE_BINARY, arrow.LARGE_LIST:
		return true
	}
	return false
}
