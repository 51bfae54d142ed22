// Package filter is the small predicate language shared by scan, count and
// search: a parser, a binder that checks every column and literal against
// an Arrow schema, and an evaluator that turns a record batch into a row
// selection. It knows nothing of files.
//
// Grammar (keywords are case-insensitive):
//
//	expr      := or
//	or        := and { OR and }
//	and       := unary { AND unary }
//	unary     := NOT unary | '(' expr ')' | predicate
//	predicate := column op literal            op: = == != <> < <= > >=
//	           | column [NOT] BETWEEN literal AND literal
//	           | column [NOT] IN '(' literal { ',' literal } ')'
//	           | column IS [NOT] NULL
//	           | column                         a boolean column
//	column    := name | "quoted name" | `quoted name`
//	literal   := integer | float | 'string' ('' escapes a quote)
//	           | TRUE | FALSE
//	           | DATE 'YYYY-MM-DD'
//	           | TIMESTAMP 'YYYY-MM-DD[ T]HH:MM:SS[.ffffff][Z|±HH:MM]'
//
// Comparisons follow SQL's three-valued logic: a comparison with a null
// value is unknown, NOT unknown is unknown, and only rows whose predicate is
// true are selected.
package filter

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// Error is a filter that cannot be parsed or does not fit the schema.
// Column names the column at fault ("" for a syntax error).
type Error struct {
	Column string
	Msg    string
}

func (e *Error) Error() string {
	if e.Column != "" {
		return fmt.Sprintf("filter: column %q: %s", e.Column, e.Msg)
	}
	return "filter: " + e.Msg
}

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
