package stream

import (
	"strconv"
	"time"
)

// The fast path of Decode for the hot input topics (scores, clicks, grades,
// consent): a single pass over the bytes, no reflection. It accepts only a
// plain subset of JSON that it is sure about: one object, every key spelled
// exactly as its tag, no key twice, no null, strings of printable ASCII
// without escapes, numbers that strconv parses without error. Anything else
// (unknown or case-folded keys, escapes, non-ASCII, duplicates, wrong types,
// trailing bytes, syntax errors) makes it give up, and Decode runs the
// reference encoding/json path on a fresh event, so accepted events, refusals
// and error texts are exactly those of encoding/json; FuzzDecodeFastMatches-
// Reference checks that. Field rules are the same Validate in both paths.

// fastScanner reads JSON from b at i. ok turns false at the first byte it
// is not sure about, and every later call is a no-op.
type fastScanner struct {
	b  []byte
	i  int
	ok bool
}

func (s *fastScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte consumes c after optional white space.
func (s *fastScanner) byte(c byte) bool {
	if !s.ok {
		return false
	}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// fail gives up on the fast path.
func (s *fastScanner) fail() { s.ok = false }

// strBytes reads a string of printable ASCII without escapes and returns
// its contents, aliasing b.
func (s *fastScanner) strBytes() []byte {
	if !s.ok {
		return nil
	}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		s.fail()
		return nil
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		if c == '"' {
			s.i = j + 1
			return s.b[start:j]
		}
		if c < 0x20 || c >= 0x80 || c == '\\' {
			break
		}
	}
	s.fail()
	return nil
}

func (s *fastScanner) str() string {
	b := s.strBytes()
	if !s.ok {
		return ""
	}
	return string(b)
}

// number reads a JSON number literal (RFC 8259 grammar). isInt reports a
// literal of only an optional minus and digits.
func (s *fastScanner) number() (lit []byte, isInt bool) {
	if !s.ok {
		return nil, false
	}
	s.ws()
	b, start, j := s.b, s.i, s.i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	default:
		s.fail()
		return nil, false
	}
	isInt = true
	if j < len(b) && b[j] == '.' {
		isInt = false
		j++
		d := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == d {
			s.fail()
			return nil, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		isInt = false
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		d := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == d {
			s.fail()
			return nil, false
		}
	}
	s.i = j
	return b[start:j], isInt
}

func (s *fastScanner) float() float64 {
	lit, _ := s.number()
	if !s.ok {
		return 0
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		s.fail()
	}
	return f
}

func (s *fastScanner) int() int {
	lit, isInt := s.number()
	if !s.ok {
		return 0
	}
	if !isInt {
		s.fail()
		return 0
	}
	n, err := strconv.ParseInt(string(lit), 10, 64)
	if err != nil || int64(int(n)) != n {
		s.fail()
	}
	return int(n)
}

func (s *fastScanner) bool() bool {
	if !s.ok {
		return false
	}
	s.ws()
	b := s.b[s.i:]
	if len(b) >= 4 && string(b[:4]) == "true" {
		s.i += 4
		return true
	}
	if len(b) >= 5 && string(b[:5]) == "false" {
		s.i += 5
		return false
	}
	s.fail()
	return false
}

// time reads a timestamp the way Time.UnmarshalJSON does; a string that does
// not parse is left to the reference path for its error.
func (s *fastScanner) time() Time {
	b := s.strBytes()
	if !s.ok {
		return Time{}
	}
	p, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		s.fail()
		return Time{}
	}
	return At(p)
}

// object reads one object, calling field for each key; field reads the value
// and returns the key's bit in seen (0 for an unknown key, which gives up).
// A key seen twice gives up too.
func (s *fastScanner) object(field func(key []byte) uint32) {
	if !s.byte('{') {
		s.fail()
		return
	}
	if s.byte('}') {
		return
	}
	var seen uint32
	for s.ok {
		key := s.strBytes()
		if !s.byte(':') {
			s.fail()
			return
		}
		bit := field(key)
		if bit == 0 || seen&bit != 0 {
			s.fail()
			return
		}
		seen |= bit
		if s.byte(',') {
			continue
		}
		if s.byte('}') {
			return
		}
		s.fail()
	}
}

// end requires nothing but white space after the object.
func (s *fastScanner) end() bool {
	if !s.ok {
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

// header reads a Header field; 0 if key is not one.
func (s *fastScanner) header(h *Header, key []byte) uint32 {
	switch string(key) {
	case "v":
		h.V = s.int()
		return 1 << 0
	case "id":
		h.ID = s.str()
		return 1 << 1
	case "ts":
		h.TS = s.time()
		return 1 << 2
	case "student":
		h.Student = s.str()
		return 1 << 3
	}
	return 0
}

// The bits of Header are 0..3; each type's own fields start at 4.

func fastScore(data []byte, e *Score) bool {
	s := fastScanner{b: data, ok: true}
	s.object(func(key []byte) uint32 {
		if bit := s.header(&e.Header, key); bit != 0 {
			return bit
		}
		switch string(key) {
		case "session":
			e.Session = s.str()
			return 1 << 4
		case "course":
			e.Course = s.str()
			return 1 << 5
		case "window_ms":
			e.WindowMS = s.int()
			return 1 << 6
		case "frames":
			e.Frames = s.int()
			return 1 << 7
		case "face_ratio":
			e.FaceRatio = s.float()
			return 1 << 8
		case "masked_ratio":
			e.MaskedRatio = s.float()
			return 1 << 9
		case "attention":
			e.Attention = s.float()
			return 1 << 10
		case "emotions":
			m := new(Emotions)
			s.object(func(k []byte) uint32 {
				switch string(k) {
				case "neutral":
					m.Neutral = s.float()
					return 1 << 0
				case "happy":
					m.Happy = s.float()
					return 1 << 1
				case "sad":
					m.Sad = s.float()
					return 1 << 2
				case "angry":
					m.Angry = s.float()
					return 1 << 3
				case "fearful":
					m.Fearful = s.float()
					return 1 << 4
				case "disgusted":
					m.Disgusted = s.float()
					return 1 << 5
				case "surprised":
					m.Surprised = s.float()
					return 1 << 6
				}
				return 0
			})
			e.Emotions = m
			return 1 << 11
		case "learning":
			l := new(Learning)
			s.object(func(k []byte) uint32 {
				switch string(k) {
				case "engaged":
					l.Engaged = s.float()
					return 1 << 0
				case "confused":
					l.Confused = s.float()
					return 1 << 1
				case "bored":
					l.Bored = s.float()
					return 1 << 2
				case "frustrated":
					l.Frustrated = s.float()
					return 1 << 3
				}
				return 0
			})
			e.Learning = l
			return 1 << 12
		case "head":
			h := new(Head)
			s.object(func(k []byte) uint32 {
				switch string(k) {
				case "yaw":
					h.Yaw = s.float()
					return 1 << 0
				case "pitch":
					h.Pitch = s.float()
					return 1 << 1
				}
				return 0
			})
			e.Head = h
			return 1 << 13
		case "eyes_open":
			v := s.float()
			e.EyesOpen = &v
			return 1 << 14
		case "model":
			e.Model = s.str()
			return 1 << 15
		}
		return 0
	})
	return s.end()
}

func fastClick(data []byte, e *Click) bool {
	s := fastScanner{b: data, ok: true}
	s.object(func(key []byte) uint32 {
		if bit := s.header(&e.Header, key); bit != 0 {
			return bit
		}
		switch string(key) {
		case "course":
			e.Course = s.str()
			return 1 << 4
		case "kind":
			e.Kind = s.str()
			return 1 << 5
		case "duration_s":
			e.DurationS = s.float()
			return 1 << 6
		case "xapi":
			e.XAPI = s.str()
			return 1 << 7
		}
		return 0
	})
	return s.end()
}

func fastGrade(data []byte, e *Grade) bool {
	s := fastScanner{b: data, ok: true}
	s.object(func(key []byte) uint32 {
		if bit := s.header(&e.Header, key); bit != 0 {
			return bit
		}
		switch string(key) {
		case "course":
			e.Course = s.str()
			return 1 << 4
		case "term":
			e.Term = s.str()
			return 1 << 5
		case "score":
			e.Score = s.float()
			return 1 << 6
		case "passed":
			e.Passed = s.bool()
			return 1 << 7
		case "elective":
			e.Elective = s.bool()
			return 1 << 8
		case "core":
			e.Core = s.bool()
			return 1 << 9
		}
		return 0
	})
	return s.end()
}

func fastConsent(data []byte, e *Consent) bool {
	s := fastScanner{b: data, ok: true}
	s.object(func(key []byte) uint32 {
		if bit := s.header(&e.Header, key); bit != 0 {
			return bit
		}
		switch string(key) {
		case "scope":
			e.Scope = s.str()
			return 1 << 4
		case "granted":
			e.Granted = s.bool()
			return 1 << 5
		case "policy_version":
			e.PolicyVersion = s.str()
			return 1 << 6
		case "guardian":
			e.Guardian = s.str()
			return 1 << 7
		}
		return 0
	})
	return s.end()
}

// decodeFast parses data for topic on the fast path, without validating.
// ok is false when the topic has no fast path or the input is not one the
// fast path is sure about; the caller then runs the reference path.
func decodeFast(topic string, data []byte) (e Event, ok bool) {
	switch topic {
	case TopicScores:
		v := &Score{}
		return v, fastScore(data, v)
	case TopicClicks:
		v := &Click{}
		return v, fastClick(data, v)
	case TopicGrades:
		v := &Grade{}
		return v, fastGrade(data, v)
	case TopicConsent:
		v := &Consent{}
		return v, fastConsent(data, v)
	}
	return nil, false
}
