package filter

import (
	"fmt"
	"strconv"
	"strings"
)

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
	var err error
	switch {
	case p.keyword("BETWEEN"):
		n, err = p.between(col)
	case p.keyword("IN"):
		n, err = p.in(col)
	case negate:
		return nil, p.errAt(p.peek(), "expected BETWEEN or IN after NOT")
	default:
		n, err = p.comparison(col)
	}
	if err != nil {
		return nil, err
	}
	if negate {
		n = notNode{n}
	}
	return n, nil
}

// between parses "lo AND hi" after BETWEEN: col >= lo AND col <= hi.
func (p *parser) between(col string) (node, error) {
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
	return andNode{cmpNode{col, ">=", lo}, cmpNode{col, "<=", hi}}, nil
}

// in parses the "(a, b, ...)" list after IN.
func (p *parser) in(col string) (node, error) {
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
	return inNode{col, lits}, nil
}

// comparison parses "op literal" after a column; == and <> are spelled
// = and != from here on.
func (p *parser) comparison(col string) (node, error) {
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
	return cmpNode{col, op, lit}, nil
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
