package ingest

import (
	"bytes"
	"crypto/sha256"
	"time"

	"github.com/oklog/ulid/v2"
)

// DeterministicID returns a ULID for an event stamped at ts whose random
// part is a SHA-256 of parts. The same input always yields the same id, so
// a statement sent twice or a file imported twice produces events a
// consumer (or a person reading the topic) recognises as the same; ids
// still sort by time like stream.NewID's.
func DeterministicID(ts time.Time, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		// A length prefix keeps ("ab","c") and ("a","bc") apart.
		var n [4]byte
		l := len(p)
		n[0], n[1], n[2], n[3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		h.Write(n[:])
		h.Write([]byte(p))
	}
	sum := h.Sum(nil)
	if ts.Before(time.Unix(0, 0)) || ts.After(ulid.Time(ulid.MaxTime())) {
		// Only rows already marked bad get here (no or absurd time); their
		// id is never published but must not panic.
		ts = time.Unix(0, 0)
	}
	return ulid.MustNew(ulid.Timestamp(ts), bytes.NewReader(sum[:10])).String()
}
