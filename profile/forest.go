package profile

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// ForestConfig configures a random forest. The zero value works.
type ForestConfig struct {
	// Trees is the number of trees; default 100.
	Trees int
	// MaxDepth bounds each tree; default 10.
	MaxDepth int
	// MinLeaf is the least number of rows in a leaf; default 5.
	MinLeaf int
	// Features is the number of features tried per split; default the
	// square root of the feature count.
	Features int
	// Seed makes training reproducible.
	Seed uint64
}

// Forest is a random forest of classification trees: bootstrap rows
// (Poisson(1) weights), a random subset of features per split, the Gini
// criterion, and leaves that hold class shares, averaged over the trees.
type Forest struct {
	Classes int    `json:"classes"`
	Trees   []Tree `json:"trees"`
}

// TrainForest fits a forest to rows x (no NaN) with classes y. Each tree
// has its own seed, so the result does not depend on the core count.
func TrainForest(x [][]float64, y []int, classes int, cfg ForestConfig) (*Forest, error) {
	if err := checkTrainingSet(x, y, classes); err != nil {
		return nil, err
	}
	if classes > 255 {
		return nil, fmt.Errorf("%w: a forest handles at most 255 classes, have %d", ErrBadInput, classes)
	}
	if cfg.Trees <= 0 {
		cfg.Trees = 100
	}
	if cfg.MaxDepth <= 0 {
		cfg.MaxDepth = 10
	}
	if cfg.MinLeaf <= 0 {
		cfg.MinLeaf = 5
	}
	d := len(x[0])
	if cfg.Features <= 0 {
		cfg.Features = max(1, int(math.Round(math.Sqrt(float64(d)))))
	}
	n, K := len(x), classes
	bn := fitBinner(x)
	bins := bn.transform(x)
	f := &Forest{Classes: K, Trees: make([]Tree, cfg.Trees)}
	cls := make([]uint8, n)
	for i, c := range y {
		cls[i] = uint8(c)
	}
	params := treeParams{maxDepth: cfg.MaxDepth, minLeaf: cfg.MinLeaf, features: cfg.Features, scale: 1}
	next := make(chan int, cfg.Trees)
	for t := range cfg.Trees {
		next <- t
	}
	close(next)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), cfg.Trees) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := newTreeBuilder(bins, bn.cuts, K, params)
			g := make([]float64, n*K)
			h := make([]float64, n*K)
			b.cls = cls
			b.wt = make([]float64, n)
			rows := make([]int32, 0, n)
			for t := range next {
				rng := rand.New(rand.NewPCG(cfg.Seed, uint64(t)+1))
				b.rng = rng
				clear(g)
				clear(h)
				rows = rows[:0]
				for i := range n {
					w := poisson(rng, 1)
					b.wt[i] = w
					if w == 0 {
						continue
					}
					rows = append(rows, int32(i))
					g[i*K+y[i]] = -w
					for c := range K {
						h[i*K+c] = w
					}
				}
				f.Trees[t] = b.build(rows, g, h)
			}
		}()
	}
	wg.Wait()
	return f, nil
}

// Proba returns the class probabilities of one feature vector.
func (f *Forest) Proba(x []float64) []float64 {
	p := make([]float64, f.Classes)
	for _, t := range f.Trees {
		for c, v := range t.leaf(x) {
			p[c] += v
		}
	}
	for c := range p {
		p[c] /= float64(len(f.Trees))
	}
	return p
}
