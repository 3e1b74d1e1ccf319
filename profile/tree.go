package profile

import (
	"math"
	"math/rand/v2"
	"slices"
)

// maxBins is the number of histogram bins per feature for tree building.
const maxBins = 64

// binner maps raw feature values to histogram bins by cut points learned
// from the training data: bin b holds values in (cuts[b-1], cuts[b]].
type binner struct {
	cuts [][]float64 // per feature, ascending, at most maxBins-1
}

// fitBinner learns quantile cut points for each column of x (no NaN). It
// looks at up to 50,000 evenly spaced rows, which is plenty for 64 bins.
func fitBinner(x [][]float64) *binner {
	d := len(x[0])
	step := max(1, len(x)/50_000)
	b := &binner{cuts: make([][]float64, d)}
	vals := make([]float64, 0, len(x)/step+1)
	for j := range d {
		vals = vals[:0]
		for i := 0; i < len(x); i += step {
			vals = append(vals, x[i][j])
		}
		slices.Sort(vals)
		uniq := slices.Compact(slices.Clone(vals))
		var cuts []float64
		if len(uniq) <= maxBins {
			for i := 0; i+1 < len(uniq); i++ {
				cuts = append(cuts, (uniq[i]+uniq[i+1])/2)
			}
		} else {
			for q := 1; q < maxBins; q++ {
				v := vals[q*len(vals)/maxBins]
				if len(cuts) == 0 || v > cuts[len(cuts)-1] {
					cuts = append(cuts, v)
				}
			}
			// The largest value must not be a cut: a cut splits off what
			// lies above it.
			if len(cuts) > 0 && cuts[len(cuts)-1] >= vals[len(vals)-1] {
				cuts = cuts[:len(cuts)-1]
			}
		}
		b.cuts[j] = cuts
	}
	return b
}

// transform bins x column-major: out[j][i] is the bin of x[i][j].
func (b *binner) transform(x [][]float64) [][]uint8 {
	out := make([][]uint8, len(b.cuts))
	for j, cuts := range b.cuts {
		col := make([]uint8, len(x))
		for i, r := range x {
			col[i] = uint8(binOf(cuts, r[j]))
		}
		out[j] = col
	}
	return out
}

// binOf returns the number of cuts below v: the first bin whose upper cut
// is at least v.
func binOf(cuts []float64, v float64) int {
	lo, hi := 0, len(cuts)
	for lo < hi {
		m := (lo + hi) / 2
		if cuts[m] < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// Node is one node of a regression tree. An inner node sends a row left
// when its feature is at most Threshold; a leaf (Feature −1) holds one
// value per output.
type Node struct {
	Feature   int       `json:"f"`
	Threshold float64   `json:"t,omitempty"`
	Left      int       `json:"l,omitempty"`
	Right     int       `json:"r,omitempty"`
	Value     []float64 `json:"v,omitempty"`
	bin       int       // the split as a bin index, for training only
}

// Tree is a regression tree stored as a node array; the root is node 0 and
// children always come after their parent.
type Tree []Node

// leaf returns the leaf values for a raw feature vector.
func (t Tree) leaf(x []float64) []float64 {
	i := 0
	for t[i].Feature >= 0 {
		if x[t[i].Feature] <= t[i].Threshold {
			i = t[i].Left
		} else {
			i = t[i].Right
		}
	}
	return t[i].Value
}

// leafBinned returns the leaf values for row r of column-major bins.
func (t Tree) leafBinned(bins [][]uint8, r int) []float64 {
	i := 0
	for t[i].Feature >= 0 {
		if int(bins[t[i].Feature][r]) <= t[i].bin {
			i = t[i].Left
		} else {
			i = t[i].Right
		}
	}
	return t[i].Value
}

// treeParams configures one tree.
type treeParams struct {
	maxDepth int
	minLeaf  int
	lambda   float64 // L2 penalty on leaf values
	features int     // features tried per node; 0 means all
	scale    float64 // leaf values are multiplied by this
}

// binStat is one histogram cell of one output.
type binStat struct{ g, h float64 }

// histogram holds, for every feature and bin, the sums of each output and
// the row count.
type histogram struct {
	stat []binStat // [feature][bin][out]
	n    []int32   // [feature][bin]
}

func newHistogram(d, nOut int) *histogram {
	return &histogram{stat: make([]binStat, d*maxBins*nOut), n: make([]int32, d*maxBins)}
}

// treeBuilder grows second-order regression trees on binned data with one
// or more outputs. For output o, row i has gradient g[i*nOut+o] and hessian
// h[i*nOut+o]; a split's gain is Σ_o G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ)
// and a leaf's value is −G/(H+λ). Gradient boosting uses one output; the
// random forest uses one per class with g = −one-hot and h = 1, for which
// the gain is the weighted Gini decrease and the leaf the class shares.
//
// With all features tried at every node (boosting), a child's histogram
// is built only for the smaller child and the larger one's is the parent's
// minus it (LightGBM's subtraction trick). With sampled features (forest)
// each node builds the histograms of its own features.
type treeBuilder struct {
	bins [][]uint8
	cuts [][]float64
	nOut int
	g, h []float64
	p    treeParams
	rng  *rand.Rand // feature sampling; nil when p.features is 0
	// cls and wt, when set, say that the outputs are classes with
	// g = −w·one-hot(cls) and h = w for every output (the forest): the
	// histograms then hold each class's weight once per row instead of
	// nOut gradient pairs, and the hessian of every output is their sum.
	cls   []uint8
	wt    []float64
	hists [][2]*histogram // two per depth: the children of one node
	feats []int
	tree  Tree
}

func newTreeBuilder(bins [][]uint8, cuts [][]float64, nOut int, p treeParams) *treeBuilder {
	d := len(bins)
	b := &treeBuilder{bins: bins, cuts: cuts, nOut: nOut, p: p, feats: make([]int, 0, d)}
	levels := p.maxDepth + 1
	if p.features > 0 && p.features < d {
		levels = 1 // no subtraction: one scratch histogram is enough
	}
	b.hists = make([][2]*histogram, levels)
	for l := range b.hists {
		b.hists[l] = [2]*histogram{newHistogram(d, nOut), newHistogram(d, nOut)}
	}
	return b
}

func (b *treeBuilder) subtract() bool { return len(b.hists) > 1 }

// build grows a tree over rows (which it reorders) with the gradients g
// and hessians h.
func (b *treeBuilder) build(rows []int32, g, h []float64) Tree {
	b.g, b.h = g, h
	b.tree = make(Tree, 0, 1<<min(b.p.maxDepth+1, 10))
	var root *histogram
	if b.subtract() {
		root = b.hists[0][0]
		b.fill(root, rows, b.allFeatures())
	}
	b.grow(rows, 0, root)
	return b.tree
}

func (b *treeBuilder) allFeatures() []int {
	b.feats = b.feats[:0]
	for j := range b.bins {
		b.feats = append(b.feats, j)
	}
	return b.feats
}

// fill builds the histograms of feats over rows into hist.
func (b *treeBuilder) fill(hist *histogram, rows []int32, feats []int) {
	nOut := b.nOut
	for _, f := range feats {
		nb := len(b.cuts[f]) + 1
		st := hist.stat[f*maxBins*nOut : (f*maxBins+nb)*nOut]
		hn := hist.n[f*maxBins : f*maxBins+nb]
		clear(st)
		clear(hn)
		col := b.bins[f]
		if nOut == 1 {
			g, h := b.g, b.h
			for _, r := range rows {
				k := col[r]
				s := &st[k]
				s.g += g[r]
				s.h += h[r]
				hn[k]++
			}
			continue
		}
		if b.cls != nil {
			for _, r := range rows {
				k := int(col[r])
				hn[k]++
				s := &st[k*nOut+int(b.cls[r])]
				s.g -= b.wt[r]
				s.h += b.wt[r]
			}
			continue
		}
		for _, r := range rows {
			k := int(col[r])
			hn[k]++
			src := int(r) * nOut
			dst := st[k*nOut : k*nOut+nOut]
			for o := range dst {
				dst[o].g += b.g[src+o]
				dst[o].h += b.h[src+o]
			}
		}
	}
}

// minus sets dst = a − b over every feature.
func (b *treeBuilder) minus(dst, a, sub *histogram) {
	for i := range dst.stat {
		dst.stat[i] = binStat{a.stat[i].g - sub.stat[i].g, a.stat[i].h - sub.stat[i].h}
	}
	for i := range dst.n {
		dst.n[i] = a.n[i] - sub.n[i]
	}
}

func (b *treeBuilder) grow(rows []int32, depth int, hist *histogram) int {
	id := len(b.tree)
	b.tree = append(b.tree, Node{Feature: -1})
	G := make([]float64, b.nOut)
	H := make([]float64, b.nOut)
	for _, r := range rows {
		base := int(r) * b.nOut
		for o := range b.nOut {
			G[o] += b.g[base+o]
			H[o] += b.h[base+o]
		}
	}
	leaf := func() int {
		v := make([]float64, b.nOut)
		for o := range v {
			if H[o]+b.p.lambda > 0 {
				v[o] = -G[o] / (H[o] + b.p.lambda) * b.p.scale
			}
		}
		b.tree[id].Value = v
		return id
	}
	if depth >= b.p.maxDepth || len(rows) < 2*b.p.minLeaf {
		return leaf()
	}
	feats := b.allFeatures()
	if !b.subtract() {
		if b.p.features > 0 && b.p.features < len(feats) {
			b.rng.Shuffle(len(feats), func(i, j int) { feats[i], feats[j] = feats[j], feats[i] })
			feats = feats[:b.p.features]
			slices.Sort(feats)
		}
		hist = b.hists[0][0]
		b.fill(hist, rows, feats)
	}
	feat, bin, ok := b.bestSplit(hist, feats, len(rows), G, H)
	if !ok {
		return leaf()
	}
	col := b.bins[feat]
	// Partition rows in place: left part first.
	i, j := 0, len(rows)-1
	for i <= j {
		if int(col[rows[i]]) <= bin {
			i++
		} else {
			rows[i], rows[j] = rows[j], rows[i]
			j--
		}
	}
	b.tree[id].Feature = feat
	b.tree[id].bin = bin
	b.tree[id].Threshold = b.cuts[feat][bin]
	left, right := rows[:i], rows[i:]
	var lh, rh *histogram
	if b.subtract() && depth+1 < b.p.maxDepth {
		// Children at maxDepth become leaves and need no histogram.
		lh, rh = b.hists[depth+1][0], b.hists[depth+1][1]
		if len(left) <= len(right) {
			b.fill(lh, left, b.allFeatures())
			b.minus(rh, hist, lh)
		} else {
			b.fill(rh, right, b.allFeatures())
			b.minus(lh, hist, rh)
		}
	}
	l := b.grow(left, depth+1, lh)
	r := b.grow(right, depth+1, rh)
	b.tree[id].Left, b.tree[id].Right = l, r
	return id
}

// bestSplit finds the split with the largest positive gain among feats.
func (b *treeBuilder) bestSplit(hist *histogram, feats []int, n int, G, H []float64) (feat, bin int, ok bool) {
	nOut := b.nOut
	lam := b.p.lambda
	parent := 0.0
	for o := range nOut {
		parent += G[o] * G[o] / (H[o] + lam + 1e-300)
	}
	bestGain := 1e-12
	gl := make([]float64, nOut)
	hl := make([]float64, nOut)
	for _, f := range feats {
		nb := len(b.cuts[f]) + 1
		if nb < 2 {
			continue
		}
		st := hist.stat[f*maxBins*nOut : (f*maxBins+nb)*nOut]
		hn := hist.n[f*maxBins : f*maxBins+nb]
		clear(gl)
		clear(hl)
		nl := 0
		for k := 0; k < nb-1; k++ {
			nl += int(hn[k])
			for o := range nOut {
				gl[o] += st[k*nOut+o].g
				hl[o] += st[k*nOut+o].h
			}
			if nl < b.p.minLeaf {
				continue
			}
			if n-nl < b.p.minLeaf {
				break
			}
			gain := -parent
			if b.cls != nil {
				hs := 0.0
				for o := range nOut {
					hs += hl[o]
				}
				for o := range nOut {
					gr, hr := G[o]-gl[o], H[o]-hs
					gain += gl[o]*gl[o]/(hs+lam+1e-300) + gr*gr/(hr+lam+1e-300)
				}
			} else {
				for o := range nOut {
					gr, hr := G[o]-gl[o], H[o]-hl[o]
					gain += gl[o]*gl[o]/(hl[o]+lam+1e-300) + gr*gr/(hr+lam+1e-300)
				}
			}
			if gain > bestGain && !math.IsNaN(gain) {
				bestGain, feat, bin, ok = gain, f, k, true
			}
		}
	}
	return feat, bin, ok
}
