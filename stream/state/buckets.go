package state

import "sync"

// chunkLen is how many seconds a chunk of buckets holds.
const chunkLen = 32

// chunk is a run of buckets; a student's copy keeps its seconds in
// chunks, ten or eleven of them in class.
type chunk [chunkLen]bucket

// chunks hands out chunks the copies dropped, so that a student in class
// costs no allocation a second.
var chunks = sync.Pool{New: func() any { return new(chunk) }}

// buckets are a copy's seconds, oldest first, in chunks: the newest goes
// at the end of the last chunk, and a chunk whose seconds have all been
// dropped goes back to the pool. Held in one array, the seconds would be
// copied whole whenever the array grew, and a class's students, whose
// seconds advance together, would grow theirs in the same second: ten
// thousand arrays allocated and copied at once stalled the processor for
// the collector (docs/performance.md).
type buckets struct {
	chunks []*chunk
	lo     int // the first second's place in chunks[0]
	n      int
}

// len is the number of seconds held.
func (b *buckets) len() int { return b.n }

// at is the i-th second held, oldest first.
func (b *buckets) at(i int) *bucket {
	j := b.lo + i
	return &b.chunks[j/chunkLen][j%chunkLen]
}

// push adds x after the newest second.
func (b *buckets) push(x bucket) {
	j := b.lo + b.n
	if j/chunkLen == len(b.chunks) {
		b.chunks = append(b.chunks, chunks.Get().(*chunk))
	}
	b.chunks[j/chunkLen][j%chunkLen] = x
	b.n++
}

// insert puts x at place k, moving the seconds from k on one place up.
func (b *buckets) insert(k int, x bucket) {
	b.push(x)
	for i := b.n - 1; i > k; i-- {
		*b.at(i) = *b.at(i - 1)
	}
	*b.at(k) = x
}

// drop removes the k oldest seconds, handing back the chunks emptied.
func (b *buckets) drop(k int) {
	b.lo += k
	b.n -= k
	for b.lo >= chunkLen {
		chunks.Put(b.chunks[0])
		b.chunks[0] = nil
		b.chunks = b.chunks[1:]
		b.lo -= chunkLen
	}
	if b.n == 0 {
		// Start the next second at the start of a chunk again.
		b.lo = 0
		for i, c := range b.chunks {
			chunks.Put(c)
			b.chunks[i] = nil
		}
		b.chunks = b.chunks[:0]
	}
}

// find returns the place of second sec, or where it would go.
func (b *buckets) find(sec int64) (int, bool) {
	n := b.n
	// The common cases: the newest second, or one after it.
	if n == 0 || b.at(n-1).sec < sec {
		return n, false
	}
	// Seconds mostly follow one another (one score a second): where sec
	// is when none is missing after it.
	if k := n - 1 - int(b.at(n-1).sec-sec); k >= 0 && b.at(k).sec == sec {
		return k, true
	}
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if b.at(m).sec < sec {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < n && b.at(lo).sec == sec
}

// slice is a copy of the seconds held, oldest first.
func (b *buckets) slice() []bucket {
	out := make([]bucket, b.n)
	for i := range out {
		out[i] = *b.at(i)
	}
	return out
}
