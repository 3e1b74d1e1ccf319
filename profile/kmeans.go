package profile

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// KMeansConfig configures one K-means run. The zero value plus K works.
type KMeansConfig struct {
	// K is the number of clusters; required.
	K int
	// MaxIter bounds Lloyd iterations per restart; default 100.
	MaxIter int
	// Restarts is the number of k-means++ seedings tried; the run with the
	// least inertia wins. Default 3.
	Restarts int
	// Tol ends the Lloyd iterations once at most this share of the rows
	// changed cluster in one iteration; default 1e-4 (on fewer than 10,000
	// rows: until no row changes).
	Tol float64
	// Seed makes the run reproducible: the same seed and data give the same
	// clustering on any machine and any GOMAXPROCS.
	Seed uint64
}

// Clustering is the result of K-means.
type Clustering struct {
	Centroids [][]float64
	Assign    []int   // cluster of each row
	Inertia   float64 // sum of squared distances to the assigned centroid
	Iter      int     // Lloyd iterations of the winning restart
}

// kmChunks is the fixed number of chunks the assignment step is split into.
// Partial sums are merged in chunk order, so results do not depend on the
// number of cores.
const kmChunks = 32

// KMeans clusters the rows of x (all of one width, no NaN) with k-means++
// seeding and Lloyd iterations.
func KMeans(x [][]float64, cfg KMeansConfig) (*Clustering, error) {
	if cfg.K < 1 {
		return nil, fmt.Errorf("k-means: k %d, want at least 1", cfg.K)
	}
	if len(x) < cfg.K {
		return nil, fmt.Errorf("%w: k-means with k=%d needs at least %d rows, have %d", ErrTooFewRows, cfg.K, cfg.K, len(x))
	}
	if cfg.MaxIter <= 0 {
		cfg.MaxIter = 100
	}
	if cfg.Restarts <= 0 {
		cfg.Restarts = 3
	}
	if cfg.Tol <= 0 {
		cfg.Tol = 1e-4
	}
	stop := int(cfg.Tol * float64(len(x)))
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6b6d65616e73))
	var best *Clustering
	for range cfg.Restarts {
		c := lloyd(x, seedPlusPlus(x, cfg.K, rng), cfg.MaxIter, stop)
		if best == nil || c.Inertia < best.Inertia {
			best = c
		}
	}
	return best, nil
}

// seedPlusPlus picks k initial centroids by k-means++: each next centroid
// is a row drawn with probability proportional to its squared distance to
// the nearest centroid chosen so far.
func seedPlusPlus(x [][]float64, k int, rng *rand.Rand) [][]float64 {
	cent := make([][]float64, 0, k)
	cent = append(cent, append([]float64(nil), x[rng.IntN(len(x))]...))
	d2 := make([]float64, len(x))
	for i, r := range x {
		d2[i] = sqDist(r, cent[0])
	}
	for len(cent) < k {
		sum := 0.0
		for _, d := range d2 {
			sum += d
		}
		pick := 0
		if sum > 0 {
			target := rng.Float64() * sum
			acc := 0.0
			for i, d := range d2 {
				acc += d
				if acc >= target {
					pick = i
					break
				}
			}
		} else {
			pick = rng.IntN(len(x))
		}
		c := append([]float64(nil), x[pick]...)
		cent = append(cent, c)
		for i, r := range x {
			d2[i] = min(d2[i], sqDist(r, c))
		}
	}
	return cent
}

// chunkStats are the partial sums of one chunk in one Lloyd iteration.
type chunkStats struct {
	sums    [][]float64
	counts  []int
	inertia float64
	changed int
}

func lloyd(x [][]float64, cent [][]float64, maxIter, stop int) *Clustering {
	k, d, n := len(cent), len(x[0]), len(x)
	assign := make([]int, n)
	for i := range assign {
		assign[i] = -1
	}
	parts := make([]chunkStats, kmChunks)
	for c := range parts {
		parts[c].sums = make([][]float64, k)
		for j := range k {
			parts[c].sums[j] = make([]float64, d)
		}
		parts[c].counts = make([]int, k)
	}
	workers := min(runtime.GOMAXPROCS(0), kmChunks)
	iter := 0
	var inertia float64
	for iter < maxIter {
		iter++
		var wg sync.WaitGroup
		next := make(chan int, kmChunks)
		for c := range kmChunks {
			next <- c
		}
		close(next)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := range next {
					lo, hi := c*n/kmChunks, (c+1)*n/kmChunks
					assignChunk(x[lo:hi], assign[lo:hi], cent, &parts[c])
				}
			}()
		}
		wg.Wait()
		changed := 0
		inertia = 0
		counts := make([]int, k)
		for j := range k {
			clear(cent[j])
		}
		for c := range parts {
			p := &parts[c]
			changed += p.changed
			inertia += p.inertia
			for j := range k {
				counts[j] += p.counts[j]
				for f, v := range p.sums[j] {
					cent[j][f] += v
				}
			}
		}
		for j := range k {
			if counts[j] > 0 {
				for f := range cent[j] {
					cent[j][f] /= float64(counts[j])
				}
			}
		}
		for j := range k {
			if counts[j] > 0 {
				continue
			}
			// An empty cluster takes the row farthest from its centroid;
			// the next iteration settles the rest.
			far, farD := -1, -1.0
			for i, r := range x {
				if a := assign[i]; counts[a] > 1 {
					if dd := sqDist(r, cent[a]); dd > farD {
						far, farD = i, dd
					}
				}
			}
			if far < 0 {
				continue
			}
			counts[assign[far]]--
			copy(cent[j], x[far])
			assign[far] = j
			counts[j] = 1
			changed++
		}
		if changed <= stop {
			break
		}
	}
	return &Clustering{Centroids: cent, Assign: assign, Inertia: inertia, Iter: iter}
}

// assignChunk assigns each row of x to its nearest centroid and sums the
// rows per cluster into p.
func assignChunk(x [][]float64, assign []int, cent [][]float64, p *chunkStats) {
	for j := range p.sums {
		clear(p.sums[j])
	}
	clear(p.counts)
	p.inertia, p.changed = 0, 0
	for i, r := range x {
		best, bestD := 0, math.Inf(1)
		for j, c := range cent {
			if dd := sqDist(r, c); dd < bestD {
				best, bestD = j, dd
			}
		}
		if assign[i] != best {
			assign[i] = best
			p.changed++
		}
		p.inertia += bestD
		p.counts[best]++
		s := p.sums[best]
		for f, v := range r {
			s[f] += v
		}
	}
}

func sqDist(a, b []float64) float64 {
	s := 0.0
	for i, v := range a {
		d := v - b[i]
		s += d * d
	}
	return s
}

// Elbow runs K-means (one k-means++ seeding unless cfg.Restarts says
// otherwise) for k = 1..maxK and picks the elbow of the inertia
// curve: the k whose point lies farthest below the straight line from the
// curve's first point to its last (both axes scaled to [0, 1]). It returns
// the chosen k and the inertia of every k.
func Elbow(x [][]float64, maxK int, cfg KMeansConfig) (int, []float64, error) {
	if maxK < 2 {
		return 0, nil, fmt.Errorf("elbow: max k %d, want at least 2", maxK)
	}
	maxK = min(maxK, len(x))
	if maxK < 2 {
		return 0, nil, fmt.Errorf("%w: elbow needs at least 2 rows", ErrTooFewRows)
	}
	inertia := make([]float64, maxK)
	if cfg.Restarts <= 0 {
		cfg.Restarts = 1
	}
	for k := 1; k <= maxK; k++ {
		c := cfg
		c.K = k
		res, err := KMeans(x, c)
		if err != nil {
			return 0, nil, err
		}
		inertia[k-1] = res.Inertia
	}
	return elbowOf(inertia), inertia, nil
}

// elbowOf returns the k (1-based) of the elbow of an inertia curve.
func elbowOf(inertia []float64) int {
	n := len(inertia)
	first, last := inertia[0], inertia[n-1]
	span := first - last
	if span <= 0 {
		return 1
	}
	best, bestGap := 1, 0.0
	for i := 1; i < n-1; i++ {
		xi := float64(i) / float64(n-1)
		line := 1 - xi // the chord, scaled: 1 at k=1, 0 at k=maxK
		curve := (inertia[i] - last) / span
		if gap := line - curve; gap > bestGap {
			best, bestGap = i+1, gap
		}
	}
	return best
}

// AdjustedRandIndex compares two partitions of the same rows: 1 when they
// are the same up to renaming, about 0 for independent ones.
func AdjustedRandIndex(a, b []int) float64 {
	if len(a) != len(b) || len(a) < 2 {
		return math.NaN()
	}
	type pair struct{ x, y int }
	joint := map[pair]int{}
	ra, rb := map[int]int{}, map[int]int{}
	for i := range a {
		joint[pair{a[i], b[i]}]++
		ra[a[i]]++
		rb[b[i]]++
	}
	c2 := func(n int) float64 { return float64(n) * float64(n-1) / 2 }
	var sumJ, sumA, sumB float64
	for _, v := range joint {
		sumJ += c2(v)
	}
	for _, v := range ra {
		sumA += c2(v)
	}
	for _, v := range rb {
		sumB += c2(v)
	}
	expected := sumA * sumB / c2(len(a))
	maxIdx := (sumA + sumB) / 2
	if maxIdx == expected {
		return 1
	}
	return (sumJ - expected) / (maxIdx - expected)
}
