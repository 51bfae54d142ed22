package filter

import (
	"cmp"
	"fmt"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

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

// evalBoth evaluates l into out and r into a new slice, for AND and OR to
// combine row by row.
func evalBoth(l, r pred, rec arrow.RecordBatch, out []int8) ([]int8, error) {
	if err := l.eval(rec, out); err != nil {
		return nil, err
	}
	right := make([]int8, len(out))
	if err := r.eval(rec, right); err != nil {
		return nil, err
	}
	return right, nil
}

func (p andPred) eval(rec arrow.RecordBatch, out []int8) error {
	r, err := evalBoth(p.l, p.r, rec, out)
	if err != nil {
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
	r, err := evalBoth(p.l, p.r, rec, out)
	if err != nil {
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
