package filter

import (
	"cmp"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Filter is a predicate bound to a schema. It is immutable and safe for
// concurrent use.
type Filter struct {
	text string
	root pred
	cols []string
}

// Compile parses expr and binds it to schema: every column must exist and be
// scalar (IS NULL accepts any column), and every literal must fit its
// column's type. An empty expr is nil (no filter).
func Compile(expr string, schema *arrow.Schema) (*Filter, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	n, err := parse(expr)
	if err != nil {
		return nil, err
	}
	f := &Filter{text: expr}
	seen := map[string]bool{}
	f.root, err = bind(n, schema, func(c string) {
		if !seen[c] {
			seen[c] = true
			f.cols = append(f.cols, c)
		}
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Check parses expr without a schema (syntax only).
func Check(expr string) error {
	if strings.TrimSpace(expr) == "" {
		return nil
	}
	_, err := parse(expr)
	return err
}

// String is the expression as written.
func (f *Filter) String() string { return f.text }

// Columns are the columns the filter reads, in order of first use.
func (f *Filter) Columns() []string { return f.cols }

// Eval returns the selection of rec's rows: sel[i] is true when the
// predicate is true for row i. rec must hold the filter's columns by name,
// with the types of the schema the filter was compiled against.
func (f *Filter) Eval(rec arrow.RecordBatch) ([]bool, error) {
	n := int(rec.NumRows())
	tri := make([]int8, n)
	if err := f.root.eval(rec, tri); err != nil {
		return nil, err
	}
	sel := make([]bool, n)
	for i, v := range tri {
		sel[i] = v == tTrue
	}
	return sel, nil
}

// Three-valued logic.
const (
	tFalse   int8 = 0
	tTrue    int8 = 1
	tUnknown int8 = 2
)

type pred interface {
	eval(rec arrow.RecordBatch, out []int8) error
}

type andPred struct{ l, r pred }
type orPred struct{ l, r pred }
type notPred struct{ x pred }

func (p andPred) eval(rec arrow.RecordBatch, out []int8) error {
	if err := p.l.eval(rec, out); err != nil {
		return err
	}
	r := make([]int8, len(out))
	if err := p.r.eval(rec, r); err != nil {
		return err
	}
	for i, a := range out {
		b := r[i]
		switch {
		case a == tFalse || b == tFalse:
			out[i] = tFalse
		case a == tTrue && b == tTrue:
			out[i] = tTrue
		default:
			out[i] = tUnknown
		}
	}
	return nil
}

func (p orPred) eval(rec arrow.RecordBatch, out []int8) error {
	if err := p.l.eval(rec, out); err != nil {
		return err
	}
	r := make([]int8, len(out))
	if err := p.r.eval(rec, r); err != nil {
		return err
	}
	for i, a := range out {
		b := r[i]
		switch {
		case a == tTrue || b == tTrue:
			out[i] = tTrue
		case a == tFalse && b == tFalse:
			out[i] = tFalse
		default:
			out[i] = tUnknown
		}
	}
	return nil
}

func (p notPred) eval(rec arrow.RecordBatch, out []int8) error {
	if err := p.x.eval(rec, out); err != nil {
		return err
	}
	for i, a := range out {
		if a != tUnknown {
			out[i] = 1 - a
		}
	}
	return nil
}

func column(rec arrow.RecordBatch, name string) (arrow.Array, error) {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return nil, &Error{Column: name, Msg: "not in the batch"}
	}
	return rec.Column(idx[0]), nil
}

type nullPred struct {
	col string
	not bool
}

func (p nullPred) eval(rec arrow.RecordBatch, out []int8) error {
	a, err := column(rec, p.col)
	if err != nil {
		return err
	}
	for i := range out {
		isNull := a.IsNull(i)
		if isNull != p.not {
			out[i] = tTrue
		} else {
			out[i] = tFalse
		}
	}
	return nil
}

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

// cmpPred compares a column with any of vals (one value for a comparison,
// several for IN, whose op is "=").
type cmpPred struct {
	col  string
	op   string
	vals []value
}

func holds(op string, c int) bool {
	switch op {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c == -1
	case "<=":
		return c == -1 || c == 0
	case ">":
		return c == 1
	case ">=":
		return c == 1 || c == 0
	}
	return false
}

// incomparable is what a NaN compares as: every comparison is false but !=.
const incomparable = 2

func cmpFloat(a, b float64) int {
	if math.IsNaN(a) || math.IsNaN(b) {
		return incomparable
	}
	return cmp.Compare(a, b)
}

func (p cmpPred) eval(rec arrow.RecordBatch, out []int8) error {
	a, err := column(rec, p.col)
	if err != nil {
		return err
	}
	var c func(i int, v *value) int
	switch a := a.(type) {
	case *array.Int8:
		c = intCmp(a.Int8Values())
	case *array.Int16:
		c = intCmp(a.Int16Values())
	case *array.Int32:
		c = intCmp(a.Int32Values())
	case *array.Int64:
		c = intCmp(a.Int64Values())
	case *array.Date32:
		c = intCmp(a.Date32Values())
	case *array.Date64:
		c = intCmp(a.Date64Values())
	case *array.Timestamp:
		c = intCmp(a.TimestampValues())
	case *array.Uint8:
		c = uintCmp(a.Uint8Values())
	case *array.Uint16:
		c = uintCmp(a.Uint16Values())
	case *array.Uint32:
		c = uintCmp(a.Uint32Values())
	case *array.Uint64:
		c = uintCmp(a.Uint64Values())
	case *array.Float32:
		vals := a.Float32Values()
		c = func(i int, v *value) int { return cmpFloat(float64(vals[i]), v.f) }
	case *array.Float64:
		vals := a.Float64Values()
		c = func(i int, v *value) int { return cmpFloat(vals[i], v.f) }
	case *array.String:
		c = func(i int, v *value) int { return strings.Compare(a.Value(i), v.s) }
	case *array.LargeString:
		c = func(i int, v *value) int { return strings.Compare(a.Value(i), v.s) }
	case *array.Boolean:
		c = func(i int, v *value) int { return cmp.Compare(b2i(a.Value(i)), b2i(v.b)) }
	default:
		return &Error{Column: p.col, Msg: fmt.Sprintf("cannot compare values of type %s", a.DataType())}
	}
	nulls := a.NullN() > 0
	for i := range out {
		if nulls && a.IsNull(i) {
			out[i] = tUnknown
			continue
		}
		r := tFalse
		for k := range p.vals {
			if holds(p.op, c(i, &p.vals[k])) {
				r = tTrue
				break
			}
		}
		out[i] = r
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

type signed interface {
	~int8 | ~int16 | ~int32 | ~int64
}

type unsigned interface {
	~uint8 | ~uint16 | ~uint32 | ~uint64
}

func intCmp[T signed](vals []T) func(int, *value) int {
	return func(i int, v *value) int {
		if v.asFloat {
			return cmpFloat(float64(vals[i]), v.f)
		}
		return cmp.Compare(int64(vals[i]), v.i)
	}
}

func uintCmp[T unsigned](vals []T) func(int, *value) int {
	return func(i int, v *value) int {
		switch {
		case v.asFloat:
			return cmpFloat(float64(vals[i]), v.f)
		case v.neg:
			return 1
		}
		return cmp.Compare(uint64(vals[i]), v.u)
	}
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
		l, err := bind(n.l, s, use)
		if err != nil {
			return nil, err
		}
		r, err := bind(n.r, s, use)
		if err != nil {
			return nil, err
		}
		return andPred{l, r}, nil
	case orNode:
		l, err := bind(n.l, s, use)
		if err != nil {
			return nil, err
		}
		r, err := bind(n.r, s, use)
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
