package filter

import (
	"fmt"
	"strings"
	"unicode"
)

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

// lex splits s into tokens, ending with tEOF.
func lex(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		var t token
		var err error
		next := i + 1
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '(':
			t = token{tLParen, "(", i}
		case c == ')':
			t = token{tRParen, ")", i}
		case c == ',':
			t = token{tComma, ",", i}
		case c == '\'':
			t, next, err = lexString(s, i)
		case c == '"' || c == '`':
			t, next, err = lexQuoted(s, i)
		case strings.ContainsRune("=!<>", rune(c)):
			t, next, err = lexOp(s, i)
		case c >= '0' && c <= '9' || c == '.' || ((c == '-' || c == '+') && i+1 < len(s) && (s[i+1] >= '0' && s[i+1] <= '9' || s[i+1] == '.')):
			t, next = lexNumber(s, i)
		case c == '_' || unicode.IsLetter(rune(c)) || c >= 0x80:
			t, next = lexIdent(s, i)
		default:
			return nil, &Error{Msg: fmt.Sprintf("unexpected character %q at position %d", c, i)}
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		i = next
	}
	return append(out, token{tEOF, "", len(s)}), nil
}

// lexString reads the 'string' starting at s[i] (a doubled quote is one quote)
// and returns it with the position after its closing quote.
func lexString(s string, i int) (token, int, error) {
	var b strings.Builder
	j := i + 1
	for {
		if j >= len(s) {
			return token{}, 0, &Error{Msg: fmt.Sprintf("unterminated string starting at position %d", i)}
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
	return token{tString, b.String(), i}, j + 1, nil
}

// lexQuoted reads a "quoted" or `quoted` column name starting at s[i].
func lexQuoted(s string, i int) (token, int, error) {
	j := strings.IndexByte(s[i+1:], s[i])
	if j < 0 {
		return token{}, 0, &Error{Msg: fmt.Sprintf("unterminated quoted name starting at position %d", i)}
	}
	return token{tQuoted, s[i+1 : i+1+j], i}, i + j + 2, nil
}

// lexOp reads a comparison operator starting at s[i].
func lexOp(s string, i int) (token, int, error) {
	c := s[i]
	j := i + 1
	if j < len(s) && (s[j] == '=' || (c == '<' && s[j] == '>')) {
		j++
	}
	op := s[i:j]
	switch op {
	case "=", "==", "!=", "<>", "<", "<=", ">", ">=":
	default:
		return token{}, 0, &Error{Msg: fmt.Sprintf("unknown operator %q at position %d", op, i)}
	}
	return token{tOp, op, i}, j, nil
}

// lexNumber reads a number starting at s[i]; the literal parser checks it.
func lexNumber(s string, i int) (token, int) {
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
	return token{tNumber, s[i:j], i}, j
}

// lexIdent reads a name or keyword starting at s[i]: letters, digits, _, .
// and any non-ASCII byte.
func lexIdent(s string, i int) (token, int) {
	j := i + 1
	for j < len(s) && (s[j] == '_' || s[j] == '.' || s[j] >= 0x80 || unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
		j++
	}
	return token{tIdent, s[i:j], i}, j
}
