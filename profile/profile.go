package profile

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Options configures a profiling run. The zero value works.
type Options struct {
	// Seed makes the run reproducible: the same table and seed give the
	// same clusters, names, coordinates and model figures.
	Seed uint64
	// K fixes the number of profiles; 0 picks it by the elbow method.
	K int
	// MaxK is the largest k the elbow method tries; default 8.
	MaxK int
	// ElbowSample bounds the rows the elbow method clusters for each k
	// (a seeded random sample); the final clustering uses every row.
	// Default 10,000.
	ElbowSample int
	// Label is the column the grade is taken from; default final_score.
	// Prediction is skipped when the table has no such column.
	Label string
	// NameMargin is how far (in normalised units) a profile's mean must lie
	// below or above the overall mean to be called marginal or diligent;
	// default 0.03.
	NameMargin float64
	// Restarts is the number of k-means++ seedings per clustering;
	// default 3.
	Restarts int
	// Train configures the grade predictors; its Seed is set from Seed.
	Train TrainConfig
	// Logger receives progress; default discards.
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.MaxK <= 0 {
		o.MaxK = 8
	}
	if o.ElbowSample <= 0 {
		o.ElbowSample = 10_000
	}
	if o.Label == "" {
		o.Label = ColFinalScore
	}
	if o.NameMargin <= 0 {
		o.NameMargin = 0.03
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Train.Seed = o.Seed
	if o.Train.Logger == nil {
		o.Train.Logger = o.Logger
	}
}

// Profile is one cluster of learners.
type Profile struct {
	Cluster int     `json:"cluster"`
	Name    string  `json:"name"` // marginal, balanced or diligent (numbered when repeated)
	Size    int     `json:"size"`
	Share   float64 `json:"share"`
	// Centroid is the cluster mean of each normalised column.
	Centroid []float64 `json:"centroid"`
	// Groups is the mean of each feature group's oriented columns (1−x for
	// confused, bored and frustrated), the three numbers of the study.
	Groups map[Group]float64 `json:"groups"`
	// Score is the mean over groups of Groups minus the overall mean; it
	// decides the name.
	Score float64 `json:"score"`
}

// Assignment is the profile of one row, to be written back to a student's
// state.
type Assignment struct {
	ID      string `json:"id"`
	Cluster int    `json:"cluster"`
	Profile string `json:"profile"`
}

// Result is the outcome of a profiling run.
type Result struct {
	IDs     []string
	Columns []string
	Groups  []Group // group of each column
	// Normalised holds the min–max normalised, imputed rows clustered.
	Normalised [][]float64
	Imputed    int // missing cells filled with the column median
	K          int
	Elbow      []float64 // inertia for k = 1..MaxK; nil when K was fixed
	Inertia    float64
	Assign     []int              // cluster of each row
	Profiles   []Profile          // indexed by cluster
	Overall    map[Group]float64  // group means over all rows
	PCA        *PCA               // fitted to Normalised, two components
	Coords     [][2]float64       // each row on the two components
	Prediction *Comparison        // nil when the table has no label column
	PerProfile []ProfileAccuracy  // per model and profile, on held-out rows
	Timings    map[string]float64 // seconds per stage
}

// ProfileAccuracy is one model's accuracy on the held-out students of one
// profile.
type ProfileAccuracy struct {
	Model    string  `json:"model"`
	Profile  string  `json:"profile"`
	Rows     int     `json:"rows"`
	Accuracy float64 `json:"accuracy"`
}

// Assignments returns the profile of every row.
func (r *Result) Assignments() []Assignment {
	out := make([]Assignment, len(r.Assign))
	for i, c := range r.Assign {
		out[i] = Assignment{ID: r.IDs[i], Cluster: c, Profile: r.Profiles[c].Name}
	}
	return out
}

// Run profiles the rows of t: it imputes missing cells with column
// medians, normalises every feature column to [0, 1], picks k by the elbow
// method (unless fixed), clusters with K-means, names the clusters,
// projects the rows on two principal components, and, when t has the
// label column, compares the grade predictors on held-out students.
func Run(t *Table, opt Options) (*Result, error) {
	opt.defaults()
	if t.Len() < 3 {
		return nil, fmt.Errorf("%w: profiling needs at least 3 rows, have %d", ErrTooFewRows, t.Len())
	}
	log := opt.Logger
	res := &Result{IDs: t.IDs, Columns: t.Columns, Timings: map[string]float64{}}
	stage := time.Now()
	mark := func(name string) {
		res.Timings[name] = time.Since(stage).Seconds()
		stage = time.Now()
	}
	for _, c := range t.Columns {
		res.Groups = append(res.Groups, GroupOf(c))
	}
	raw := make([][]float64, t.Len())
	flat := make([]float64, t.Len()*len(t.Columns))
	for i, r := range t.Rows {
		raw[i] = flat[i*len(t.Columns) : (i+1)*len(t.Columns)]
		copy(raw[i], r)
	}
	for _, r := range raw {
		if slices.ContainsFunc(r, math.IsNaN) {
			res.Imputed = Impute(raw, Medians(raw, len(t.Columns)))
			break
		}
	}
	x := FitScaler(raw, len(t.Columns)).Transform(raw)
	res.Normalised = x
	mark("normalise")

	km := KMeansConfig{Seed: opt.Seed, Restarts: opt.Restarts}
	res.K = opt.K
	if res.K <= 0 {
		sample := x
		if len(x) > opt.ElbowSample {
			rng := rand.New(rand.NewPCG(opt.Seed, 0x656c626f77))
			idx := rng.Perm(len(x))[:opt.ElbowSample]
			slices.Sort(idx)
			sample = make([][]float64, len(idx))
			for k, i := range idx {
				sample[k] = x[i]
			}
		}
		k, curve, err := Elbow(sample, opt.MaxK, KMeansConfig{Seed: opt.Seed})
		if err != nil {
			return nil, err
		}
		res.K, res.Elbow = k, curve
		log.Info("elbow", "k", k, "rows", len(sample))
		mark("elbow")
	}
	km.K = res.K
	cl, err := KMeans(x, km)
	if err != nil {
		return nil, err
	}
	res.Assign, res.Inertia = cl.Assign, cl.Inertia
	res.nameProfiles(cl, opt.NameMargin)
	mark("kmeans")

	res.PCA = FitPCA(x, 2)
	res.Coords = make([][2]float64, len(x))
	for i, r := range x {
		p := res.PCA.Project(r)
		res.Coords[i] = [2]float64{p[0], p[len(p)-1]}
	}
	mark("pca")

	if t.Column(opt.Label) >= 0 || len(t.Labels) == t.Len() && len(t.Labels) > 0 {
		ds, err := NewDataset(t, nil, opt.Label)
		if err != nil {
			return nil, err
		}
		cmp, err := Compare(ds, opt.Train)
		switch {
		case errors.Is(err, ErrTooFewRows):
			// Too few students to hold any out: the profiles still stand.
			log.Warn("grade prediction skipped", "err", err)
		case err != nil:
			return nil, err
		default:
			res.Prediction = cmp
			res.PerProfile = res.perProfile(cmp)
			mark("predict")
		}
	}
	return res, nil
}

// nameProfiles fills res.Profiles from the clustering: group means per
// cluster, their distance from the overall means, and a name.
func (res *Result) nameProfiles(cl *Clustering, margin float64) {
	groupCols := map[Group][]int{}
	for j, g := range res.Groups {
		groupCols[g] = append(groupCols[g], j)
	}
	orient := func(j int, v float64) float64 {
		if negativeFeatures[res.Columns[j]] {
			return 1 - v
		}
		return v
	}
	groupMeans := func(row []float64) map[Group]float64 {
		out := map[Group]float64{}
		for _, g := range FeatureGroups {
			cols := groupCols[g]
			if len(cols) == 0 {
				continue
			}
			s := 0.0
			for _, j := range cols {
				s += orient(j, row[j])
			}
			out[g] = s / float64(len(cols))
		}
		return out
	}
	d := len(res.Columns)
	mean := make([]float64, d)
	for _, r := range res.Normalised {
		for j, v := range r {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(len(res.Normalised))
	}
	res.Overall = groupMeans(mean)
	sizes := make([]int, len(cl.Centroids))
	for _, c := range cl.Assign {
		sizes[c]++
	}
	res.Profiles = make([]Profile, len(cl.Centroids))
	for c, cent := range cl.Centroids {
		p := Profile{Cluster: c, Size: sizes[c], Share: float64(sizes[c]) / float64(len(cl.Assign)),
			Centroid: cent, Groups: groupMeans(cent)}
		n := 0
		for _, g := range FeatureGroups {
			if v, ok := p.Groups[g]; ok {
				p.Score += v - res.Overall[g]
				n++
			}
		}
		if n > 0 {
			p.Score /= float64(n)
		}
		switch {
		case p.Score < -margin:
			p.Name = ProfileMarginal
		case p.Score > margin:
			p.Name = ProfileDiligent
		default:
			p.Name = ProfileBalanced
		}
		res.Profiles[c] = p
	}
	// Clusters that share a name are numbered from the strongest.
	order := make([]int, len(res.Profiles))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		sa, sb := res.Profiles[a].Score, res.Profiles[b].Score
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	seen := map[string]int{}
	for _, c := range order {
		name := res.Profiles[c].Name
		seen[name]++
		if seen[name] > 1 {
			res.Profiles[c].Name = fmt.Sprintf("%s %d", name, seen[name])
		}
	}
}

// perProfile computes each model's accuracy on the held-out rows of each
// profile, profiles in cluster order.
func (res *Result) perProfile(cmp *Comparison) []ProfileAccuracy {
	var out []ProfileAccuracy
	for _, m := range cmp.Results {
		for c, p := range res.Profiles {
			pa := ProfileAccuracy{Model: m.Name, Profile: p.Name}
			correct := 0
			for k, i := range cmp.Test {
				if res.Assign[i] != c {
					continue
				}
				pa.Rows++
				if m.Pred[k] == cmp.Truth[k] {
					correct++
				}
			}
			if pa.Rows > 0 {
				pa.Accuracy = float64(correct) / float64(pa.Rows)
			}
			out = append(out, pa)
		}
	}
	return out
}
