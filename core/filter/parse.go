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
	"strconv"
	"strings"
	"unicode"
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

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tQuoted // a quoted column name
	tString
	tNumber
	tOp
	tLParen
	tRParen
	tComma
)

type token struct {
	kind tokKind
	text string
	pos  int
}

func lex(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			out = append(out, token{tLParen, "(", i})
			i++
		case c == ')':
			out = append(out, token{tRParen, ")", i})
			i++
		case c == ',':
			out = append(out, token{tComma, ",", i})
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, &Error{Msg: fmt.Sprintf("unterminated string starting at position %d", i)}
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			out = append(out, token{tString, b.String(), i})
			i = j + 1
		case c == '"' || c == '`':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, &Error{Msg: fmt.Sprintf("unterminated quoted name starting at position %d", i)}
			}
			out = append(out, token{tQuoted, s[i+1 : i+1+j], i})
			i += j + 2
		case strings.ContainsRune("=!<>", rune(c)):
			j := i + 1
			if j < len(s) && (s[j] == '=' || (c == '<' && s[j] == '>')) {
				j++
			}
			op := s[i:j]
			switch op {
			case "=", "==", "!=", "<>", "<", "<=", ">", ">=":
			default:
				return nil, &Error{Msg: fmt.Sprintf("unknown operator %q at position %d", op, i)}
			}
			out = append(out, token{tOp, op, i})
			i = j
		case c >= '0' && c <= '9' || c == '.' || ((c == '-' || c == '+') && i+1 < len(s) && (s[i+1] >= '0' && s[i+1] <= '9' || s[i+1] == '.')):
			j := i + 1
			for j < len(s) {
				d := s[j]
				if d >= '0' && d <= '9' || d == '.' || d == '_' || d == 'e' || d == 'E' ||
					((d == '-' || d == '+') && (s[j-1] == 'e' || s[j-1] == 'E')) {
					j++
					continue
				}
				break
			}
			out = append(out, token{tNumber, s[i:j], i})
			i = j
		case c == '_' || unicode.IsLetter(rune(c)) || c >= 0x80:
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] == '.' || s[j] >= 0x80 || unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
				j++
			}
			out = append(out, token{tIdent, s[i:j], i})
			i = j
		default:
			return nil, &Error{Msg: fmt.Sprintf("unexpected character %q at position %d", c, i)}
		}
	}
	return append(out, token{tEOF, "", len(s)}), nil
}

// litKind is the kind of a literal as written.
type litKind int

const (
	litInt litKind = iota + 1
	litFloat
	litString
	litBool
	litDate
	litTimestamp
	litNull
)

type literal struct {
	kind litKind
	i    int64
	f    float64
	s    string
	b    bool
	text string
}

// node is a parsed expression.
type node interface{}

type (
	andNode struct{ l, r node }
	orNode  struct{ l, r node }
	notNode struct{ x node }
	cmpNode struct {
		col string
		op  string // = != < <= > >=
		lit literal
	}
	inNode struct {
		col  string
		lits []literal
	}
	nullNode struct {
		col string
		not bool
	}
)

type parser struct {
	toks []token
	i    int
}

// Parse parses a filter expression without binding it to a schema.
func parse(s string) (node, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errAt(t, "expected AND, OR or the end")
	}
	return n, nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) keyword(kw string) bool {
	t := p.peek()
	if t.kind == tIdent && strings.EqualFold(t.text, kw) {
		p.i++
		return true
	}
	return false
}

func (p *parser) errAt(t token, msg string) error {
	what := strconv.Quote(t.text)
	if t.kind == tEOF {
		what = "the end"
	}
	return &Error{Msg: fmt.Sprintf("%s, found %s at position %d", msg, what, t.pos)}
}

func (p *parser) or() (node, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.keyword("OR") {
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = orNode{l, r}
	}
	return l, nil
}

func (p *parser) and() (node, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.keyword("AND") {
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = andNode{l, r}
	}
	return l, nil
}

func (p *parser) unary() (node, error) {
	if p.keyword("NOT") {
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return notNode{x}, nil
	}
	if p.peek().kind == tLParen {
		p.next()
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tRParen {
			return nil, p.errAt(t, "expected )")
		}
		return x, nil
	}
	return p.predicate()
}

var reserved = map[string]bool{"AND": true, "OR": true, "NOT": true, "IN": true, "IS": true, "NULL": true,
	"BETWEEN": true, "TRUE": true, "FALSE": true}

func (p *parser) predicate() (node, error) {
	t := p.next()
	var col string
	switch {
	case t.kind == tQuoted:
		col = t.text
	case t.kind == tIdent && !reserved[strings.ToUpper(t.text)]:
		col = t.text
	default:
		return nil, p.errAt(t, "expected a column name")
	}
	if p.keyword("IS") {
		not := p.keyword("NOT")
		if !p.keyword("NULL") {
			return nil, p.errAt(p.peek(), "expected NULL after IS")
		}
		return nullNode{col, not}, nil
	}
	if t := p.peek(); t.kind != tOp && !(t.kind == tIdent && (strings.EqualFold(t.text, "NOT") ||
		strings.EqualFold(t.text, "BETWEEN") || strings.EqualFold(t.text, "IN"))) {
		// A bare column: a boolean column is its own predicate.
		return cmpNode{col, "=", literal{kind: litBool, b: true, text: "TRUE (a bare column is a boolean test)"}}, nil
	}
	negate := p.keyword("NOT")
	var n node
	switch {
	case p.keyword("BETWEEN"):
		lo, err := p.literal(col)
		if err != nil {
			return nil, err
		}
		if !p.keyword("AND") {
			return nil, p.errAt(p.peek(), "expected AND in BETWEEN")
		}
		hi, err := p.literal(col)
		if err != nil {
			return nil, err
		}
		n = andNode{cmpNode{col, ">=", lo}, cmpNode{col, "<=", hi}}
	case p.keyword("IN"):
		if t := p.next(); t.kind != tLParen {
			return nil, p.errAt(t, "expected ( after IN")
		}
		var lits []literal
		for {
			l, err := p.literal(col)
			if err != nil {
				return nil, err
			}
			lits = append(lits, l)
			t := p.next()
			if t.kind == tRParen {
				break
			}
			if t.kind != tComma {
				return nil, p.errAt(t, "expected , or ) in IN list")
			}
		}
		n = inNode{col, lits}
	case negate:
		return nil, p.errAt(p.peek(), "expected BETWEEN or IN after NOT")
	default:
		t := p.next()
		if t.kind != tOp {
			return nil, p.errAt(t, fmt.Sprintf("expected a comparison, BETWEEN, IN or IS after column %q", col))
		}
		op := t.text
		switch op {
		case "==":
			op = "="
		case "<>":
			op = "!="
		}
		lit, err := p.literal(col)
		if err != nil {
			return nil, err
		}
		n = cmpNode{col, op, lit}
	}
	if negate {
		n = notNode{n}
	}
	return n, nil
}

func (p *parser) literal(col string) (literal, error) {
	t := p.next()
	switch t.kind {
	case tString:
		return literal{kind: litString, s: t.text, text: "'" + t.text + "'"}, nil
	case tNumber:
		text := strings.ReplaceAll(t.text, "_", "")
		if i, err := strconv.ParseInt(text, 10, 64); err == nil {
			return literal{kind: litInt, i: i, f: float64(i), text: t.text}, nil
		}
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return literal{}, &Error{Column: col, Msg: fmt.Sprintf("bad number %q at position %d", t.text, t.pos)}
		}
		return literal{kind: litFloat, f: f, text: t.text}, nil
	case tIdent:
		switch strings.ToUpper(t.text) {
		case "TRUE":
			return literal{kind: litBool, b: true, text: "TRUE"}, nil
		case "FALSE":
			return literal{kind: litBool, b: false, text: "FALSE"}, nil
		case "NULL":
			return literal{}, &Error{Column: col, Msg: "NULL is not a value to compare with; use IS NULL or IS NOT NULL"}
		case "DATE", "TIMESTAMP":
			s := p.next()
			if s.kind != tString {
				return literal{}, p.errAt(s, fmt.Sprintf("expected a quoted string after %s", strings.ToUpper(t.text)))
			}
			k := litDate
			if strings.EqualFold(t.text, "TIMESTAMP") {
				k = litTimestamp
			}
			return literal{kind: k, s: s.text, text: strings.ToUpper(t.text) + " '" + s.text + "'"}, nil
		}
	}
	return literal{}, p.errAt(t, "expected a literal (number, 'string', TRUE, FALSE, DATE '…', TIMESTAMP '…')")
}
