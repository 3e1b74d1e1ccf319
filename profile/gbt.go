package profile

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// GBTConfig configures gradient-boosted trees. The zero value works.
type GBTConfig struct {
	// Rounds is the number of boosting rounds; default 120.
	Rounds int
	// LearningRate shrinks each round's trees; default 0.1.
	LearningRate float64
	// MaxDepth bounds each tree; default 3.
	MaxDepth int
	// MinLeaf is the least number of rows in a leaf; default 20.
	MinLeaf int
	// Lambda is the L2 penalty on leaf values; default 1.
	Lambda float64
	// Subsample is the share of rows each round sees (stochastic gradient
	// boosting); default 0.8 below 20,000 rows and 0.5 from there on, where
	// half the rows estimate the gradient as well and halve the time.
	Subsample float64
	// Seed makes training reproducible.
	Seed uint64
}

func (c *GBTConfig) defaults(rows int) {
	if c.Rounds <= 0 {
		c.Rounds = 120
	}
	if c.LearningRate <= 0 {
		c.LearningRate = 0.1
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = 3
	}
	if c.MinLeaf <= 0 {
		c.MinLeaf = 20
	}
	if c.Lambda <= 0 {
		c.Lambda = 1
	}
	if c.Subsample <= 0 || c.Subsample > 1 {
		c.Subsample = 0.8
		if rows >= 20_000 {
			c.Subsample = 0.5
		}
	}
}

// GBT is a multiclass gradient-boosted tree ensemble: per class a margin
// F_c = Base_c + Σ_rounds tree_c(x), and P(c) = softmax(F)_c. Each round
// fits one regression tree per class to the gradient and hessian of the
// softmax cross-entropy with a Newton step in each leaf (Friedman's
// multiclass MART, with second-order gains as in XGBoost).
type GBT struct {
	Classes int       `json:"classes"`
	Base    []float64 `json:"base"`
	// Trees[r][c] is round r's tree for class c; leaf values already
	// include the learning rate.
	Trees [][]Tree `json:"trees"`
}

// TrainGBT fits a GBT to rows x (no NaN) with classes y in 0..classes-1.
// Training is deterministic for a seed; the class trees of one round are
// grown in parallel, each from its own data, so the core count does not
// change the result.
func TrainGBT(x [][]float64, y []int, classes int, cfg GBTConfig) (*GBT, error) {
	cfg.defaults(len(x))
	if err := checkTrainingSet(x, y, classes); err != nil {
		return nil, err
	}
	n, K := len(x), classes
	bn := fitBinner(x)
	bins := bn.transform(x)
	m := &GBT{Classes: K, Base: make([]float64, K)}
	counts := make([]float64, K)
	for _, c := range y {
		counts[c]++
	}
	for c := range K {
		m.Base[c] = math.Log((counts[c] + 1) / (float64(n) + float64(K)))
	}
	F := make([]float64, n*K)
	for i := range n {
		copy(F[i*K:], m.Base)
	}
	params := treeParams{
		maxDepth: cfg.MaxDepth, minLeaf: cfg.MinLeaf, lambda: cfg.Lambda,
		scale: cfg.LearningRate * float64(K-1) / float64(K),
	}
	type classWork struct {
		b    *treeBuilder
		g, h []float64
		rows []int32
	}
	work := make([]classWork, K)
	for c := range work {
		work[c] = classWork{b: newTreeBuilder(bins, bn.cuts, 1, params), g: make([]float64, n), h: make([]float64, n)}
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x67627421))
	P := make([]float64, n*K)
	sample := make([]int32, 0, n)
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for range cfg.Rounds {
		for i := range n {
			softmaxInto(P[i*K:(i+1)*K], F[i*K:(i+1)*K])
		}
		sample = sample[:0]
		for i := range n {
			if cfg.Subsample >= 1 || rng.Float64() < cfg.Subsample {
				sample = append(sample, int32(i))
			}
		}
		if len(sample) < 2*cfg.MinLeaf {
			sample = sample[:0]
			for i := range n {
				sample = append(sample, int32(i))
			}
		}
		round := make([]Tree, K)
		var wg sync.WaitGroup
		for c := range K {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				w := &work[c]
				for i := range n {
					p := P[i*K+c]
					t := 0.0
					if y[i] == c {
						t = 1
					}
					w.g[i] = p - t
					w.h[i] = max(p*(1-p), 1e-6)
				}
				w.rows = append(w.rows[:0], sample...)
				tree := w.b.build(w.rows, w.g, w.h)
				for i := range n {
					F[i*K+c] += tree.leafBinned(bins, i)[0]
				}
				round[c] = tree
			}()
		}
		wg.Wait()
		m.Trees = append(m.Trees, round)
	}
	return m, nil
}

// Proba returns the class probabilities of one feature vector.
func (m *GBT) Proba(x []float64) []float64 {
	F := make([]float64, m.Classes)
	copy(F, m.Base)
	for _, round := range m.Trees {
		for c, t := range round {
			F[c] += t.leaf(x)[0]
		}
	}
	softmaxInto(F, F)
	return F
}

// softmaxInto writes softmax(f) into p; p and f may be the same slice.
func softmaxInto(p, f []float64) {
	mx := math.Inf(-1)
	for _, v := range f {
		mx = max(mx, v)
	}
	s := 0.0
	for i, v := range f {
		e := math.Exp(v - mx)
		p[i] = e
		s += e
	}
	for i := range p {
		p[i] /= s
	}
}

func checkTrainingSet(x [][]float64, y []int, classes int) error {
	if classes < 2 {
		return fmt.Errorf("%w: %d class in the labels, need at least 2", ErrTooFewRows, classes)
	}
	if len(x) != len(y) {
		return fmt.Errorf("training set: %d rows but %d labels", len(x), len(y))
	}
	if len(x) < 2 {
		return fmt.Errorf("%w: %d training rows", ErrTooFewRows, len(x))
	}
	d := len(x[0])
	for i, r := range x {
		if len(r) != d {
			return fmt.Errorf("training set: row %d has %d features, row 1 has %d", i+1, len(r), d)
		}
		for _, v := range r {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("training set: row %d holds a missing or infinite value; impute first", i+1)
			}
		}
		if y[i] < 0 || y[i] >= classes {
			return fmt.Errorf("training set: row %d has class %d outside 0..%d", i+1, y[i], classes-1)
		}
	}
	return nil
}
