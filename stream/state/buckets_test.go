package state

import (
	"math/rand"
	"reflect"
	"sort"
	"testing"
)

// TestBucketsHoldWhatASliceWould runs the operations a copy makes (a new
// second, a late one inside the windows, dropping the oldest) on buckets
// and on a plain sorted slice, and compares them after each.
func TestBucketsHoldWhatASliceWould(t *testing.T) {
	cases := []struct {
		name          string
		steps         int
		late, dropOld float64 // chances per step
		maxGap        int64
	}{
		{"a steady class", 2000, 0, 1, 1},
		{"seconds missed now and then", 2000, 0, 1, 4},
		{"late seconds inside the windows", 2000, 0.2, 1, 2},
		{"nothing dropped for a while, then all", 500, 0.1, 0.01, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(int64(len(c.name))))
			var b buckets
			var ref []bucket
			head := int64(1_000)
			for step := range c.steps {
				var sec int64
				if rng.Float64() < c.late && len(ref) > 0 {
					sec = head - rng.Int63n(int64(longestWindow))
				} else {
					head += 1 + rng.Int63n(c.maxGap)
					sec = head
				}
				k, ok := b.find(sec)
				rk := sort.Search(len(ref), func(i int) bool { return ref[i].sec >= sec })
				rok := rk < len(ref) && ref[rk].sec == sec
				if k != rk || ok != rok {
					t.Fatalf("step %d: find(%d) = %d, %v; the slice says %d, %v", step, sec, k, ok, rk, rok)
				}
				x := bucket{sec: sec}
				x.v[0] = float32(step)
				if !ok {
					b.insert(k, x)
					ref = append(ref, bucket{})
					copy(ref[rk+1:], ref[rk:])
					ref[rk] = x
				} else {
					b.at(k).v[1]++
					ref[rk].v[1]++
				}
				if rng.Float64() < c.dropOld {
					cut, _ := b.find(head - longestWindow + 1)
					if rng.Float64() < 0.01 {
						cut = b.len() // a pause empties them
					}
					b.drop(cut)
					ref = ref[cut:]
				}
				if got := b.slice(); !reflect.DeepEqual(got, append([]bucket{}, ref...)) {
					t.Fatalf("step %d: buckets hold %d seconds, the slice %d, or other ones", step, len(got), len(ref))
				}
				if held := len(b.chunks) * chunkLen; held > b.len()+2*chunkLen {
					t.Fatalf("step %d: %d seconds kept in %d chunks: emptied chunks are not handed back", step, b.len(), len(b.chunks))
				}
			}
		})
	}
}
