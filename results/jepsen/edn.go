package jepsen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrSyntax is wrapped by every error about text that is not the EDN this
// reader knows.
var ErrSyntax = errors.New("not EDN")

// Kind is what an EDN value is.
type Kind uint8

// The kinds of EDN values this package reads and writes.
const (
	Nil Kind = iota
	Bool
	Int
	Float
	String
	Keyword // :name or :ns/name; Str holds it without the colon
	Symbol
	Char
	Vector
	List
	Map // Items alternate key, value
	Set
	Tagged // #tag value: Str is the tag, Items[0] the value
)

// Value is one EDN value. Which fields mean something depends on Kind.
type Value struct {
	Kind  Kind
	Bool  bool
	Int   int64
	Float float64
	Str   string
	Items []Value
}

// KW is the keyword :name.
func KW(name string) Value { return Value{Kind: Keyword, Str: name} }

// I is the integer n.
func I(n int64) Value { return Value{Kind: Int, Int: n} }

// S is the string s.
func S(s string) Value { return Value{Kind: String, Str: s} }

// Vec is the vector of items.
func Vec(items ...Value) Value { return Value{Kind: Vector, Items: items} }

// IsNil reports whether v is nil.
func (v Value) IsNil() bool { return v.Kind == Nil }

// IsKW reports whether v is the keyword :name.
func (v Value) IsKW(name string) bool { return v.Kind == Keyword && v.Str == name }

// Get returns the value of map v under keyword key (Nil when v is no map
// or has no such key).
func (v Value) Get(key string) Value {
	if v.Kind != Map {
		return Value{}
	}
	for i := 0; i+1 < len(v.Items); i += 2 {
		if v.Items[i].IsKW(key) {
			return v.Items[i+1]
		}
	}
	return Value{}
}

// Seq reports whether v is a vector or a list (the sequences an op's value
// may be).
func (v Value) Seq() bool { return v.Kind == Vector || v.Kind == List }

// String writes v as EDN.
func (v Value) String() string {
	var b strings.Builder
	v.write(&b)
	return b.String()
}

func (v Value) write(b *strings.Builder) {
	switch v.Kind {
	case Nil:
		b.WriteString("nil")
	case Bool:
		b.WriteString(strconv.FormatBool(v.Bool))
	case Int:
		b.WriteString(strconv.FormatInt(v.Int, 10))
	case Float:
		s := strconv.FormatFloat(v.Float, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEn") {
			s += ".0"
		}
		b.WriteString(s)
	case String:
		b.WriteString(quote(v.Str))
	case Keyword:
		b.WriteString(":" + v.Str)
	case Symbol:
		b.WriteString(v.Str)
	case Char:
		b.WriteString(`\` + v.Str)
	case Tagged:
		b.WriteString("#" + v.Str + " ")
		if len(v.Items) > 0 {
			v.Items[0].write(b)
		}
	default:
		d := delimiters[v.Kind]
		b.WriteString(d[0])
		for i, it := range v.Items {
			switch {
			case i == 0:
			case v.Kind == Map && i%2 == 0:
				b.WriteString(", ")
			default:
				b.WriteByte(' ')
			}
			it.write(b)
		}
		b.WriteString(d[1])
	}
}

var delimiters = map[Kind][2]string{Vector: {"[", "]"}, List: {"(", ")"}, Map: {"{", "}"}, Set: {"#{", "}"}}

// quote writes s as an EDN string: the escapes EDN knows, \uXXXX for other
// control characters.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == utf8.RuneError {
				fmt.Fprintf(&b, `\u%04x`, r)
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Reader reads EDN values one after the other.
type Reader struct {
	r    *bufio.Reader
	line int
}

// NewReader reads EDN from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 1<<16), line: 1} }

// Line is the current line (1-based), for error messages.
func (d *Reader) Line() int { return d.line }

func (d *Reader) errf(format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrSyntax, d.line, fmt.Sprintf(format, args...))
}

func (d *Reader) next() (rune, error) {
	r, _, err := d.r.ReadRune()
	if r == '\n' {
		d.line++
	}
	return r, err
}

func (d *Reader) unread(r rune) {
	_ = d.r.UnreadRune()
	if r == '\n' {
		d.line--
	}
}

// skip passes whitespace, commas and comments and returns the next rune.
func (d *Reader) skip() (rune, error) {
	for {
		r, err := d.next()
		if err != nil {
			return 0, err
		}
		switch {
		case r == ';':
			for r != '\n' {
				if r, err = d.next(); err != nil {
					return 0, err
				}
			}
		case r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f':
		default:
			return r, nil
		}
	}
}

// Read returns the next value; io.EOF when there is none.
func (d *Reader) Read() (Value, error) {
	r, err := d.skip()
	if err != nil {
		return Value{}, err
	}
	return d.value(r)
}

// value reads the value that begins with r.
func (d *Reader) value(r rune) (Value, error) {
	switch r {
	case '[':
		items, err := d.items(']')
		return Value{Kind: Vector, Items: items}, err
	case '(':
		items, err := d.items(')')
		return Value{Kind: List, Items: items}, err
	case '{':
		items, err := d.items('}')
		if err == nil && len(items)%2 != 0 {
			err = d.errf("a map with an odd number of forms")
		}
		return Value{Kind: Map, Items: items}, err
	case ']', ')', '}':
		return Value{}, d.errf("unexpected %q", r)
	case '"':
		s, err := d.str()
		return Value{Kind: String, Str: s}, err
	case '#':
		return d.dispatch()
	case '\\':
		tok, err := d.token()
		if err != nil {
			return Value{}, err
		}
		if tok == "" {
			c, err := d.next()
			return Value{Kind: Char, Str: string(c)}, d.eof(err)
		}
		return Value{Kind: Char, Str: tok}, nil
	}
	d.unread(r)
	tok, err := d.token()
	if err != nil {
		return Value{}, err
	}
	return d.atom(tok)
}

func (d *Reader) eof(err error) error {
	if errors.Is(err, io.EOF) {
		return d.errf("unexpected end of input")
	}
	return err
}

// items reads values up to the closing rune.
func (d *Reader) items(close rune) ([]Value, error) {
	items := []Value{}
	for {
		r, err := d.skip()
		if err != nil {
			return nil, d.eof(err)
		}
		if r == close {
			return items, nil
		}
		v, err := d.value(r)
		if err != nil {
			return nil, err
		}
		if v.Kind == Tagged && v.Str == "_" {
			continue // #_ discards the next form
		}
		items = append(items, v)
	}
}

// dispatch reads what follows '#': a set, a discarded form or a tag.
func (d *Reader) dispatch() (Value, error) {
	r, err := d.next()
	if err != nil {
		return Value{}, d.eof(err)
	}
	switch r {
	case '{':
		items, err := d.items('}')
		return Value{Kind: Set, Items: items}, err
	case '_':
		if _, err := d.Read(); err != nil {
			return Value{}, d.eof(err)
		}
		return Value{Kind: Tagged, Str: "_"}, nil
	}
	d.unread(r)
	tag, err := d.token()
	if err != nil || tag == "" {
		return Value{}, d.errf("a # that starts no set, tag or discard")
	}
	v, err := d.Read()
	if err != nil {
		return Value{}, d.eof(err)
	}
	return Value{Kind: Tagged, Str: tag, Items: []Value{v}}, nil
}

// token reads up to a delimiter.
func (d *Reader) token() (string, error) {
	var b strings.Builder
	for {
		r, err := d.next()
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return "", err
		}
		if strings.ContainsRune(" \t\n\r\f,()[]{}\";", r) {
			d.unread(r)
			return b.String(), nil
		}
		b.WriteRune(r)
	}
}

// str reads a string after its opening quote.
func (d *Reader) str() (string, error) {
	var b strings.Builder
	for {
		r, err := d.next()
		if err != nil {
			return "", d.eof(err)
		}
		switch r {
		case '"':
			return b.String(), nil
		case '\\':
			e, err := d.next()
			if err != nil {
				return "", d.eof(err)
			}
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'u':
				hex := make([]rune, 4)
				for i := range hex {
					if hex[i], err = d.next(); err != nil {
						return "", d.eof(err)
					}
				}
				n, perr := strconv.ParseUint(string(hex), 16, 32)
				if perr != nil {
					return "", d.errf("bad \\u escape %q", string(hex))
				}
				b.WriteRune(rune(n))
			default:
				b.WriteRune(e)
			}
		default:
			b.WriteRune(r)
		}
	}
}

// atom turns a token into nil, a boolean, a number, a keyword or a symbol.
func (d *Reader) atom(tok string) (Value, error) {
	switch tok {
	case "":
		return Value{}, d.errf("empty form")
	case "nil":
		return Value{}, nil
	case "true", "false":
		return Value{Kind: Bool, Bool: tok == "true"}, nil
	}
	if tok[0] == ':' {
		if len(tok) == 1 {
			return Value{}, d.errf("a lone ':'")
		}
		return Value{Kind: Keyword, Str: tok[1:]}, nil
	}
	c := tok[0]
	if c >= '0' && c <= '9' || (c == '-' || c == '+') && len(tok) > 1 && tok[1] >= '0' && tok[1] <= '9' {
		num := strings.TrimSuffix(tok, "N")
		if n, err := strconv.ParseInt(num, 10, 64); err == nil {
			return Value{Kind: Int, Int: n}, nil
		}
		f, err := strconv.ParseFloat(strings.TrimSuffix(num, "M"), 64)
		if err != nil {
			return Value{}, d.errf("bad number %q", tok)
		}
		return Value{Kind: Float, Float: f}, nil
	}
	return Value{Kind: Symbol, Str: tok}, nil
}

// ParseString reads the one value in s.
func ParseString(s string) (Value, error) {
	d := NewReader(strings.NewReader(s))
	v, err := d.Read()
	if err != nil {
		return Value{}, d.eof(err)
	}
	if _, err := d.skip(); !errors.Is(err, io.EOF) {
		return Value{}, d.errf("more than one form in %q", s)
	}
	return v, nil
}
