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
		buf = appendLiveOffset(buf, a.field, a.offset)
	}
	for _, p := range a.pairs {
		buf = appendBulkString(buf, p)
	}
	return buf
}

// appendLiveOffset lays out the value of the live hash's "o" as a RESP
// bulk string, without building it first.
func appendLiveOffset(buf []byte, field string, offset int64) []byte {
	var num [24]byte
	n := strconv.AppendInt(num[:0], offset, 10)
	buf = append(buf, '$')
	buf = strconv.AppendInt(buf, int64(len(field)+1+len(n)), 10)
	buf = append(buf, '\r', '\n')
	buf = append(buf, field...)
	buf = append(buf, '|')
	buf = append(buf, n...)
	return append(buf, '\r', '\n')
}

// anys are the arguments for go-redis (the pool's path).
func (a *scoreArgs) anys() []any {
	out := make([]any, 0, a.len())
	out = append(out, "live", a.field, a.offset, a.sec, a.prev, a.expect, a.ttl, a.mode, a.vector, a.horizon, a.check)
	if a.version != "" {
		out = append(out, "v", a.version, liveOffsetField, a.field+"|"+strconv.FormatInt(a.offset, 10))
	}
	for _, p := range a.pairs {
		out = append(out, p)
	}
	return out
}

// nargs is the number of the call's script arguments.
func (c *call) nargs() int {
	if c.score != nil {
		return c.score.len()
	}
	return len(c.args)
}
