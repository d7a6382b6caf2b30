package lambdaevent

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
)

// scanner walks a JSON document without building anything: it finds where values start
// and end so that Detect can name the event and Decode can lift the body out, both
// without materialising the event. It accepts exactly what encoding/json accepts
// (json.Valid): bytes of any value inside strings, no check of UTF-8, at most
// maxDepth levels of nesting.
type scanner struct {
	b     []byte
	i     int
	depth int
}

// maxDepth is encoding/json's nesting limit: deeper documents are invalid to it.
const maxDepth = 10000

// span is a value's bytes in the document, from its first byte to just after its last.
type span struct{ start, end int }

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value skips one value; s.i is at its first byte.
func (s *scanner) value() (span, bool) {
	start := s.i
	if s.i >= len(s.b) {
		return span{}, false
	}
	var ok bool
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, ok = s.str()
	case c == '{':
		ok = s.object(nil)
	case c == '[':
		ok = s.array(nil)
	case c == 't':
		ok = s.literal("true")
	case c == 'f':
		ok = s.literal("false")
	case c == 'n':
		ok = s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		ok = s.number()
	}
	return span{start, s.i}, ok
}

func (s *scanner) literal(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// number follows JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.digits() == 0:
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// stops has the high bit set in each byte of w that ends a run of plain string bytes: a
// quote, a backslash or a control character. It may also flag a byte above a flagged
// one (a borrow), never one below, so its lowest flag is exact.
func stops(w uint64) uint64 {
	q := w ^ (ones * '"')
	bs := w ^ (ones * '\\')
	return ((q-ones)&^q | (bs-ones)&^bs | (w-ones*0x20)&^w) & highs
}

// str skips a string; s.i is at its opening quote. escaped says whether it holds a
// backslash, ascii whether every byte is below 0x80: a string with neither reads the
// same raw as decoded. Long runs of plain bytes (a base64 body) go eight at a time.
func (s *scanner) str() (escaped, ascii, ok bool) {
	b := s.b
	i := s.i + 1
	var high uint64
	for {
		for len(b)-i >= 8 {
			w := binary.LittleEndian.Uint64(b[i:])
			if m := stops(w); m != 0 {
				n := bits.TrailingZeros64(m) / 8
				high |= w & (1<<(8*n) - 1) & highs
				i += n
				break
			}
			high |= w & highs
			i += 8
		}
		if i >= len(b) {
			return false, false, false
		}
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return escaped, high == 0, true
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return false, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return false, false, false
				}
				i += 6
			default:
				return false, false, false
			}
		case c < 0x20:
			return false, false, false
		default:
			high |= uint64(c) & 0x80
			i++
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// member is one name/value pair of an object; key is the name's raw bytes, quotes
// included.
type member struct {
	key     span
	escaped bool // the name holds an escape
	val     span
}

// object skips an object; s.i is at '{'. each, when not nil, sees every member in order.
func (s *scanner) object(each func(member)) bool {
	if s.depth++; s.depth > maxDepth {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return false
		}
		var m member
		m.key.start = s.i
		esc, _, ok := s.str()
		if !ok {
			return false
		}
		m.key.end, m.escaped = s.i, esc
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		if m.val, ok = s.value(); !ok {
			return false
		}
		if each != nil {
			each(m)
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// array skips an array; s.i is at '['. each, when not nil, sees every element in order.
func (s *scanner) array(each func(span)) bool {
	if s.depth++; s.depth > maxDepth {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		s.depth--
		return true
	}
	for {
		v, ok := s.value()
		if !ok {
			return false
		}
		if each != nil {
			each(v)
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.ws()
		case ']':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// name is a member's name as encoding/json reads it (escapes resolved, invalid UTF-8
// replaced); the common name without escapes is its raw bytes.
func (s *scanner) name(m member) string {
	raw := s.b[m.key.start:m.key.end]
	if !m.escaped {
		return string(raw[1 : len(raw)-1])
	}
	var n string
	if json.Unmarshal(raw, &n) != nil {
		return ""
	}
	return n
}

// nameIs reports whether m's name is want exactly, without allocating for a plain name.
func (s *scanner) nameIs(m member, want string) bool {
	if !m.escaped {
		return string(s.b[m.key.start+1:m.key.end-1]) == want
	}
	return s.name(m) == want
}
