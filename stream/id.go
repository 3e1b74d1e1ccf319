package stream

import (
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

var (
	idMu      sync.Mutex
	idEntropy = ulid.Monotonic(rand.Reader, 0)
)

// DerivedID returns the ULID of an event derived from the event with id
// source (purpose names the derivation), stamped at ts: the same source
// and purpose always give the same id, so an event published again after a
// crash is recognisably the same one.
func DerivedID(source string, ts time.Time, purpose string) string {
	sum := sha256.Sum256([]byte(purpose + "\x00" + source))
	var id ulid.ULID
	if err := id.SetTime(ulid.Timestamp(ts)); err != nil {
		// Before 1970 or after 10889: the zero time keeps the id valid.
		_ = id.SetTime(0)
	}
	if err := id.SetEntropy(sum[:10]); err != nil {
		panic(err) // 10 bytes is what SetEntropy takes
	}
	return id.String()
}

// NewID returns a new ULID for an event stamped at ts. IDs made in one
// process sort by time and are unique even within one millisecond.
func NewID(ts time.Time) string {
	idMu.Lock()
	defer idMu.Unlock()
	return ulid.MustNew(ulid.Timestamp(ts), idEntropy).String()
}
