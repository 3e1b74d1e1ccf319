package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Statement is the part of an xAPI 1.0.3 statement that classpulse reads.
// Other fields (authority, attachments, result.score, …) are allowed and
// ignored: LMSs send much more than a click needs.
type Statement struct {
	ID        string   `json:"id"`
	Actor     Actor    `json:"actor"`
	Verb      Verb     `json:"verb"`
	Object    Object   `json:"object"`
	Result    *Result  `json:"result,omitempty"`
	Context   *Context `json:"context,omitempty"`
	Timestamp string   `json:"timestamp,omitempty"`
}

// Actor is the agent the statement is about.
type Actor struct {
	ObjectType string   `json:"objectType,omitempty"`
	Name       string   `json:"name,omitempty"`
	Mbox       string   `json:"mbox,omitempty"`
	Account    *Account `json:"account,omitempty"`
}

// Account is an actor's account on a system, the usual carrier of a
// student number.
type Account struct {
	HomePage string `json:"homePage"`
	Name     string `json:"name"`
}

// Verb names what the actor did by IRI.
type Verb struct {
	ID string `json:"id"`
}

// Object is the activity acted on.
type Object struct {
	ObjectType string      `json:"objectType,omitempty"`
	ID         string      `json:"id"`
	Definition *Definition `json:"definition,omitempty"`
}

// Definition carries an activity's type IRI.
type Definition struct {
	Type string `json:"type,omitempty"`
}

// Result carries the time spent, as an ISO 8601 duration.
type Result struct {
	Duration string `json:"duration,omitempty"`
}

// Context holds the activities the object sits in (its course).
type Context struct {
	ContextActivities *ContextActivities `json:"contextActivities,omitempty"`
}

// ContextActivities are the parent and grouping activities of a statement.
// xAPI allows each to be one object or an array; UnmarshalJSON accepts both.
type ContextActivities struct {
	Parent   Activities `json:"parent,omitempty"`
	Grouping Activities `json:"grouping,omitempty"`
}

// Activities is a list of activities that also decodes from one object.
type Activities []Object

// UnmarshalJSON accepts an array or a single object.
func (a *Activities) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var o Object
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		*a = Activities{o}
		return nil
	}
	var os []Object
	if err := json.Unmarshal(b, &os); err != nil {
		return err
	}
	*a = os
	return nil
}

// DecodeStatements splits a request body into its statements: one JSON
// object, or an array of them. The whole body fails only when it is not a
// JSON object or array; each element is decoded on its own, so one bad
// statement of a batch is reported at its index while the others go on.
// raw[i] is the element's bytes; errs[i] is non-nil where it did not decode.
func DecodeStatements(body []byte) (stmts []Statement, errs []error, err error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil, fmt.Errorf("%w: empty body", ErrUnmappable)
	}
	var raws []json.RawMessage
	switch body[0] {
	case '{':
		raws = []json.RawMessage{body}
	case '[':
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, nil, fmt.Errorf("%w: body is not a JSON array of statements: %v", ErrUnmappable, err)
		}
	default:
		return nil, nil, fmt.Errorf("%w: body must be a statement object or an array of statements", ErrUnmappable)
	}
	stmts = make([]Statement, len(raws))
	errs = make([]error, len(raws))
	for i, r := range raws {
		dec := json.NewDecoder(bytes.NewReader(r))
		if err := dec.Decode(&stmts[i]); err != nil {
			errs[i] = unmappable(CodeMalformed, err.Error())
			continue
		}
		if dec.More() {
			errs[i] = unmappable(CodeMalformed, "trailing data after the statement")
		}
	}
	return stmts, errs, nil
}

// ParseDuration parses an ISO 8601 duration as xAPI uses it (PnDTnHnMnS,
// PnW, fractional seconds) into seconds. Years and months are refused: their
// length depends on the calendar and no LMS reports study time in them.
func ParseDuration(s string) (float64, error) {
	if len(s) < 2 || len(s) > 64 || s[0] != 'P' {
		return 0, fmt.Errorf("duration %q: want ISO 8601 such as PT1H30M or PT45.5S", s)
	}
	rest := s[1:]
	total := 0.0
	inTime := false
	seen := ""
	any := false
	for len(rest) > 0 {
		if rest[0] == 'T' {
			if inTime {
				return 0, fmt.Errorf("duration %q: second T", s)
			}
			inTime = true
			rest = rest[1:]
			if len(rest) == 0 {
				return 0, fmt.Errorf("duration %q: T without a time part", s)
			}
			continue
		}
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.' || rest[i] == ',') {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, fmt.Errorf("duration %q: want a number followed by a unit", s)
		}
		num, err := strconv.ParseFloat(strings.Replace(rest[:i], ",", ".", 1), 64)
		if err != nil || math.IsInf(num, 0) {
			return 0, fmt.Errorf("duration %q: bad number %q", s, rest[:i])
		}
		unit := rest[i]
		var mult float64
		switch {
		case !inTime && unit == 'D':
			mult = 86400
		case !inTime && unit == 'W':
			mult = 7 * 86400
		case !inTime && (unit == 'Y' || unit == 'M'):
			return 0, fmt.Errorf("duration %q: years and months have no fixed length; use days or hours", s)
		case inTime && unit == 'H':
			mult = 3600
		case inTime && unit == 'M':
			mult = 60
		case inTime && unit == 'S':
			mult = 1
		default:
			return 0, fmt.Errorf("duration %q: unit %q not allowed here", s, unit)
		}
		key := string(unit)
		if inTime {
			key = "T" + key
		}
		if strings.Contains(seen, key+";") {
			return 0, fmt.Errorf("duration %q: unit %q twice", s, unit)
		}
		seen += key + ";"
		total += num * mult
		any = true
		rest = rest[i+1:]
	}
	if !any {
		return 0, fmt.Errorf("duration %q: no value", s)
	}
	if math.IsInf(total, 0) || math.IsNaN(total) {
		return 0, fmt.Errorf("duration %q: too large", s)
	}
	return total, nil
}
