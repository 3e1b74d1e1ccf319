package state

import "strconv"

// scoreArgs are the ARGV of a score's apply script call (apply.lua, kind
// live), typed: a score is most of the calls, and boxing its numbers and
// strings into []any cost an allocation each.
type scoreArgs struct {
	field          string // ARGV 2, the offset field
	offset, sec    int64  // ARGV 3 and 4
	prev           string // ARGV 5, the gap check
	expect, ttl    string // ARGV 6 and 7
	mode, vector   string // ARGV 8 and 9
	horizon        int64  // ARGV 10
	check, version string // ARGV 11; the new "v" ("" none: a late score)
	pairs          []string
}

// A score that writes the live hash writes its offset there too, as the
// pair "o" = "<offset field>|<offset>", rather than in the offsets hash: one
// command less per score (apply.lua; loadRolling reads it back).
const liveOffsetField = "o"

// len is the number of arguments.
func (a *scoreArgs) len() int {
	n := 11 + len(a.pairs)
	if a.version != "" {
		n += 4 // "v" and "o"
	}
	return n
}

// append lays the arguments out as RESP bulk strings, as appendArg would.
func (a *scoreArgs) append(buf []byte) []byte {
	buf = appendBulkString(buf, "live")
	buf = appendBulkString(buf, a.field)
	buf = appendBulkInt(buf, a.offset)
	buf = appendBulkInt(buf, a.sec)
	buf = appendBulkString(buf, a.prev)
	buf = appendBulkString(buf, a.expect)
	buf = appendBulkString(buf, a.ttl)
	buf = appendBulkString(buf, a.mode)
	buf = appendBulkString(buf, a.vector)
	buf = appendBulkInt(buf, a.horizon)
	buf = appendBulkString(buf, a.check)
	if a.version != "" {
		buf = appendBulkString(buf, "v")
		buf = appendBulkString(buf, a.version)
		buf = appendBulkString(buf, liveOffsetField)
		var o [64]byte
		buf = appendBulk(buf, appendLiveOffset(o[:0], a.field, a.offset))
	}
	for _, p := range a.pairs {
		buf = appendBulkString(buf, p)
	}
	return buf
}

// appendLiveOffset appends the value of the live hash's "o" for the
// offset read from field: "<offset field>|<offset>" (liveOffset reads it).
func appendLiveOffset(buf []byte, field string, offset int64) []byte {
	buf = append(buf, field...)
	buf = append(buf, '|')
	return strconv.AppendInt(buf, offset, 10)
}

// anys are the arguments for go-redis (the pool's path).
func (a *scoreArgs) anys() []any {
	out := make([]any, 0, a.len())
	out = append(out, "live", a.field, a.offset, a.sec, a.prev, a.expect, a.ttl, a.mode, a.vector, a.horizon, a.check)
	if a.version != "" {
		out = append(out, "v", a.version, liveOffsetField, string(appendLiveOffset(nil, a.field, a.offset)))
	}
	for _, p := range a.pairs {
		out = append(out, p)
	}
	return out
}
