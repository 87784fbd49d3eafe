package results

import (
	"encoding/json"
	"errors"
)

// UnmarshalLine decodes one history line into op, which must be zero. It
// reads exactly what encoding/json reads into an Op (a property test and a
// fuzz target keep the two the same), on a fast path for the lines the
// harness writes by the million: a flat object of numbers, plain strings
// and arrays of numbers. Anything else (a fault, an escaped string, a
// field it does not know, a malformed line) is left to encoding/json,
// which also words the errors.
//
// It exists because strongcheck check reads a history of an hour, tens of
// millions of lines, within a minute: encoding/json spends most of its time
// on reflection for lines whose shape is always the same.
func (op *Op) UnmarshalLine(b []byte) error {
	if fastDecode(op, b, nil) {
		return nil
	}
	*op = Op{}
	return json.Unmarshal(b, op)
}

// errSlow sends a line to encoding/json.
var errSlow = errors.New("not a fast line")

// decoder is a cursor over one line.
type decoder struct {
	b []byte
	i int
	// arena, when not nil, hands out the integers Value and Expect point
	// to, 256 to an allocation (Scan's lineDecoder keeps it across lines).
	arena *[]int64
}

// lineDecoder decodes the lines of one scan, sharing an arena.
type lineDecoder struct{ arena []int64 }

// decode is UnmarshalLine with the scan's arena.
func (l *lineDecoder) decode(op *Op, b []byte) error {
	if fastDecode(op, b, &l.arena) {
		return nil
	}
	*op = Op{}
	return json.Unmarshal(b, op)
}

// fastDecode decodes b into op when every field is one the fast path
// knows, and reports whether it did.
func fastDecode(op *Op, b []byte, arena *[]int64) bool {
	d := decoder{b: b, arena: arena}
	if !d.byte('{') {
		return false
	}
	if d.peek('}') {
		d.i++
		return d.end()
	}
	for {
		key, ok := d.plainString()
		if !ok || !d.byte(':') {
			return false
		}
		if err := d.field(op, key); err != nil {
			return false
		}
		if d.byte(',') {
			continue
		}
		return d.byte('}') && d.end()
	}
}

// field decodes the value of one field.
func (d *decoder) field(op *Op, key []byte) error {
	var err error
	switch string(key) {
	case "v":
		var v int64
		v, err = d.int()
		op.V = int(v)
		if int64(op.V) != v {
			err = errSlow
		}
	case "index":
		op.Index, err = d.int()
	case "time":
		op.Time, err = d.int()
	case "latency":
		op.Latency, err = d.int()
	case "lo":
		op.Lo, err = d.int()
	case "hi":
		op.Hi, err = d.int()
	case "process":
		err = d.process(op)
	case "type":
		var s string
		s, err = d.str()
		op.Type = Type(s)
	case "f":
		op.F, err = d.str()
	case "workload":
		op.Workload, err = d.str()
	case "key":
		op.Key, err = d.str()
	case "node":
		op.Node, err = d.str()
	case "error":
		op.Error, err = d.str()
	case "warning":
		op.Warning, err = d.str()
	case "value":
		op.Value, err = d.intPtr()
	case "expect":
		op.Expect, err = d.intPtr()
	case "values":
		op.Values, err = d.ints()
	case "ids":
		op.IDs, err = d.ints()
	case "missing":
		op.Missing, err = d.ints()
	case "transfer":
		op.Transfer, err = d.transfer()
	case "txn":
		op.Txn, err = d.txn()
	default:
		return errSlow
	}
	return err
}

// txn reads a list-append transaction, [["f",k,v],...] with v an integer,
// or null or an array of integers for a read, as Mop.UnmarshalJSON does.
func (d *decoder) txn() ([]Mop, error) {
	if !d.byte('[') {
		return nil, errSlow
	}
	out := []Mop{}
	if d.byte(']') {
		return out, nil
	}
	for {
		if !d.byte('[') {
			return nil, errSlow
		}
		var m Mop
		var err error
		if m.F, err = d.str(); err != nil || !d.byte(',') {
			return nil, errSlow
		}
		if m.Key, err = d.int(); err != nil || !d.byte(',') {
			return nil, errSlow
		}
		switch {
		case !m.IsRead():
			m.Value, err = d.int()
		case d.peek('['):
			m.Read, err = d.ints()
		case d.i+4 <= len(d.b) && string(d.b[d.i:d.i+4]) == "null":
			d.i += 4
		default:
			err = errSlow
		}
		if err != nil || !d.byte(']') {
			return nil, errSlow
		}
		out = append(out, m)
		if d.byte(',') {
			continue
		}
		if d.byte(']') {
			return out, nil
		}
		return nil, errSlow
	}
}

func (d *decoder) end() bool { return d.i == len(d.b) }

func (d *decoder) peek(c byte) bool { return d.i < len(d.b) && d.b[d.i] == c }

func (d *decoder) byte(c byte) bool {
	if d.peek(c) {
		d.i++
		return true
	}
	return false
}

// plainString reads a string without escapes and returns its bytes.
func (d *decoder) plainString() ([]byte, bool) {
	if !d.byte('"') {
		return nil, false
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return d.b[start : d.i-1], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false // escapes and non-ASCII: encoding/json's rules
		}
		d.i++
	}
	return nil, false
}

// str reads a plain string; the values every line repeats are shared, not
// copied.
func (d *decoder) str() (string, error) {
	b, ok := d.plainString()
	if !ok {
		return "", errSlow
	}
	switch string(b) {
	case "invoke":
		return "invoke", nil
	case "ok":
		return "ok", nil
	case "fail":
		return "fail", nil
	case "info":
		return "info", nil
	case "read":
		return FRead, nil
	case "write":
		return FWrite, nil
	case "cas":
		return FCAS, nil
	case "add":
		return FAdd, nil
	case "transfer":
		return FTransfer, nil
	case "txn":
		return FTxn, nil
	case "append":
		return MopAppend, nil
	case "r":
		return MopRead, nil
	case "register":
		return WorkloadRegister, nil
	case "set":
		return WorkloadSet, nil
	case "bank":
		return WorkloadBank, nil
	case "n1":
		return "n1", nil
	case "n2":
		return "n2", nil
	case "n3":
		return "n3", nil
	}
	return string(b), nil
}

// int reads a JSON integer that fits an int64 (no fraction, no exponent,
// no leading zeros).
func (d *decoder) int() (int64, error) {
	neg := d.byte('-')
	digits := d.i
	var v uint64
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		if v > (1<<63)/10 {
			return 0, errSlow // too large: encoding/json words the error
		}
		v = v*10 + uint64(d.b[d.i]-'0')
		d.i++
	}
	n := d.i - digits
	if n == 0 || (n > 1 && d.b[digits] == '0') || (d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E')) {
		return 0, errSlow
	}
	switch {
	case neg && v <= 1<<63:
		return -int64(v), nil
	case !neg && v < 1<<63:
		return int64(v), nil
	}
	return 0, errSlow
}

// intPtr reads an integer, into the arena when there is one: every line
// has one, and an allocation each is a fifth of the decoding.
func (d *decoder) intPtr() (*int64, error) {
	v, err := d.int()
	if err != nil {
		return nil, err
	}
	if d.arena == nil {
		return &v, nil
	}
	if len(*d.arena) == 0 {
		*d.arena = make([]int64, 256)
	}
	p := &(*d.arena)[0]
	*d.arena = (*d.arena)[1:]
	*p = v
	return p, nil
}

func (d *decoder) ints() ([]int64, error) {
	if !d.byte('[') {
		return nil, errSlow
	}
	out := []int64{}
	if d.byte(']') {
		return out, nil
	}
	for {
		v, err := d.int()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if d.byte(',') {
			continue
		}
		if d.byte(']') {
			return out, nil
		}
		return nil, errSlow
	}
}

// process reads a client number or "nemesis" / "harness".
func (d *decoder) process(op *Op) error {
	if d.peek('"') {
		s, err := d.str()
		if err != nil {
			return err
		}
		switch s {
		case "nemesis":
			op.Process = NemesisProcess
		case "harness":
			op.Process = HarnessProcess
		default:
			return errSlow
		}
		return nil
	}
	v, err := d.int()
	if err != nil || v < 0 || v != int64(int(v)) {
		return errSlow
	}
	op.Process = Process(v)
	return nil
}

// transfer reads {"id":..,"from":..,"to":..,"amount":..} in that order.
func (d *decoder) transfer() (*Transfer, error) {
	t := &Transfer{}
	for i, name := range []string{"id", "from", "to", "amount"} {
		if i > 0 && !d.byte(',') {
			return nil, errSlow
		}
		if i == 0 && !d.byte('{') {
			return nil, errSlow
		}
		key, ok := d.plainString()
		if !ok || string(key) != name || !d.byte(':') {
			return nil, errSlow
		}
		v, err := d.int()
		if err != nil {
			return nil, err
		}
		switch name {
		case "id":
			t.ID = v
		case "from":
			t.From = int(v)
		case "to":
			t.To = int(v)
		case "amount":
			t.Amount = v
		}
		if int64(int(v)) != v && (name == "from" || name == "to") {
			return nil, errSlow
		}
	}
	if !d.byte('}') {
		return nil, errSlow
	}
	return t, nil
}
