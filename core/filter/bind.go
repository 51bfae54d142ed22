package filter

import (
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// kind is the comparison domain of a column.
type kind int

const (
	kInt kind = iota + 1
	kUint
	kFloat
	kString
	kBool
	kTemporal // date32/date64/timestamp: int64 in the column's unit
)

// value is a literal converted to its column's domain.
type value struct {
	i int64
	u uint64
	f float64
	s string
	b bool
	// asFloat: an integer column compared with a non-integral literal.
	asFloat bool
	// neg: a negative literal against an unsigned column.
	neg bool
}

func kindOf(t arrow.DataType) (kind, bool) {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64:
		return kInt, true
	case arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return kUint, true
	case arrow.FLOAT32, arrow.FLOAT64:
		return kFloat, true
	case arrow.STRING, arrow.LARGE_STRING:
		return kString, true
	case arrow.BOOL:
		return kBool, true
	case arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP:
		return kTemporal, true
	}
	return 0, false
}

func bind(n node, s *arrow.Schema, use func(string)) (pred, error) {
	switch n := n.(type) {
	case andNode:
		l, r, err := bindBoth(n.l, n.r, s, use)
		if err != nil {
			return nil, err
		}
		return andPred{l, r}, nil
	case orNode:
		l, r, err := bindBoth(n.l, n.r, s, use)
		if err != nil {
			return nil, err
		}
		return orPred{l, r}, nil
	case notNode:
		x, err := bind(n.x, s, use)
		if err != nil {
			return nil, err
		}
		return notPred{x}, nil
	case nullNode:
		if _, err := field(s, n.col); err != nil {
			return nil, err
		}
		use(n.col)
		return nullPred(n), nil
	case cmpNode:
		return bindCmp(s, n.col, n.op, []literal{n.lit}, use)
	case inNode:
		return bindCmp(s, n.col, "=", n.lits, use)
	}
	return nil, fmt.Errorf("filter: unknown node %T", n)
}

// bindBoth binds the two sides of AND or OR, left first (the order columns
// are first used in).
func bindBoth(l, r node, s *arrow.Schema, use func(string)) (pred, pred, error) {
	lp, err := bind(l, s, use)
	if err != nil {
		return nil, nil, err
	}
	rp, err := bind(r, s, use)
	if err != nil {
		return nil, nil, err
	}
	return lp, rp, nil
}

func field(s *arrow.Schema, col string) (arrow.Field, error) {
	idx := s.FieldIndices(col)
	if len(idx) == 0 {
		names := make([]string, s.NumFields())
		for i, f := range s.Fields() {
			names[i] = f.Name
		}
		return arrow.Field{}, &Error{Column: col, Msg: fmt.Sprintf("no such column (columns: %s)", strings.Join(names, ", "))}
	}
	return s.Field(idx[0]), nil
}

func bindCmp(s *arrow.Schema, col, op string, lits []literal, use func(string)) (pred, error) {
	f, err := field(s, col)
	if err != nil {
		return nil, err
	}
	k, ok := kindOf(f.Type)
	if !ok {
		return nil, &Error{Column: col, Msg: fmt.Sprintf("has type %s; filters compare only scalar columns (ints, floats, strings, bools, dates, timestamps); IS [NOT] NULL works on any column", f.Type)}
	}
	vals := make([]value, len(lits))
	for i, l := range lits {
		if vals[i], err = convert(col, f.Type, k, l); err != nil {
			return nil, err
		}
	}
	use(col)
	return cmpPred{col: col, op: op, vals: vals}, nil
}

func mismatch(col string, t arrow.DataType, l literal) error {
	return &Error{Column: col, Msg: fmt.Sprintf("type %s cannot be compared with %s", t, l.text)}
}

func convert(col string, t arrow.DataType, k kind, l literal) (value, error) {
	switch k {
	case kInt, kUint:
		switch l.kind {
		case litInt:
			return value{i: l.i, u: uint64(l.i), neg: l.i < 0}, nil
		case litFloat:
			return value{f: l.f, asFloat: true}, nil
		}
	case kFloat:
		if l.kind == litInt || l.kind == litFloat {
			return value{f: l.f}, nil
		}
	case kString:
		if l.kind == litString {
			return value{s: l.s}, nil
		}
	case kBool:
		if l.kind == litBool {
			return value{b: l.b}, nil
		}
	case kTemporal:
		if l.kind == litString || l.kind == litDate || l.kind == litTimestamp {
			v, err := temporal(t, l)
			if err != nil {
				return value{}, &Error{Column: col, Msg: err.Error()}
			}
			return v, nil
		}
	}
	return value{}, mismatch(col, t, l)
}

var timeLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
	"2006-01-02",
}

// temporal converts a date or timestamp literal to the column's integer
// unit. A timestamp without an offset is UTC (as Arrow stores instants).
// Against a date column, a timestamp compares through its day, and against
// a timestamp column a date is its midnight UTC.
func temporal(t arrow.DataType, l literal) (value, error) {
	var tm time.Time
	var err error
	for _, layout := range timeLayouts {
		if tm, err = time.Parse(layout, l.s); err == nil {
			break
		}
	}
	if err != nil {
		return value{}, fmt.Errorf("%s is not a date or timestamp (use 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS[.ffffff][Z|+HH:MM]')", l.text)
	}
	tm = tm.UTC()
	switch tt := t.(type) {
	case *arrow.Date32Type:
		days := tm.Unix() / 86400
		if tm.Unix() < 0 && tm.Unix()%86400 != 0 {
			days--
		}
		if tm.Unix()%86400 != 0 {
			// A timestamp within a day: compare as a fraction of that day.
			return value{f: float64(tm.UnixNano()) / 86400e9, asFloat: true}, nil
		}
		return value{i: days}, nil
	case *arrow.Date64Type:
		return value{i: tm.UnixMilli()}, nil
	case *arrow.TimestampType:
		switch tt.Unit {
		case arrow.Second:
			return value{i: tm.Unix()}, nil
		case arrow.Millisecond:
			return value{i: tm.UnixMilli()}, nil
		case arrow.Microsecond:
			return value{i: tm.UnixMicro()}, nil
		default:
			return value{i: tm.UnixNano()}, nil
		}
	}
	return value{}, fmt.Errorf("type %s is not temporal", t)
}
