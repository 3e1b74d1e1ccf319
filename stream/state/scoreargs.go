package state

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

// len is the number of arguments.
func (a *scoreArgs) len() int {
	n := 11 + len(a.pairs)
	if a.version != "" {
		n += 2
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
	}
	for _, p := range a.pairs {
		buf = appendBulkString(buf, p)
	}
	return buf
}

// anys are the arguments for go-redis (the pool's path).
func (a *scoreArgs) anys() []any {
	out := make([]any, 0, a.len())
	out = append(out, "live", a.field, a.offset, a.sec, a.prev, a.expect, a.ttl, a.mode, a.vector, a.horizon, a.check)
	if a.version != "" {
		out = append(out, "v", a.version)
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
