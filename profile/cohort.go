package profile

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/classpulse/classpulse/stream"
)

// Profile names of the study, from the weakest to the strongest.
const (
	ProfileMarginal = "marginal"
	ProfileBalanced = "balanced"
	ProfileDiligent = "diligent"
)

// CohortConfig describes a synthetic cohort. The zero value plus a student
// count gives the study's mix.
type CohortConfig struct {
	// Students is the number of students; required, at most 10,000,000.
	Students int
	// Windows is the number of windows of the click counts; default
	// DefaultWindows.
	Windows int
	// Seed makes the cohort reproducible; the same seed gives the same
	// cohort byte for byte.
	Seed uint64
	// Mix is the share of marginal, balanced and diligent learners; default
	// 0.10, 0.68, 0.22 as in the study (208, 1,400 and 451 of 2,059).
	Mix [3]float64
	// ClassSize is the number of students per class; default 40.
	ClassSize int
}

// Cohort is a generated cohort: a feature table whose final_score column
// is the course result, and what was planted in it.
type Cohort struct {
	Table *Table
	// Planted is the profile each student was drawn from.
	Planted []string
	// Grades is each student's grade class.
	Grades []string
}

// planted holds one profile's expected behaviour. Levels are tuned so that
// the group means after min–max normalisation keep the study's order:
// marginal learners low in outcome and emotion, diligent ones high in
// emotion (access and video frequency), balanced ones in between.
type planted struct {
	name                                  string
	final                                 float64 // mean final score
	attend, live                          float64 // sign-in probability, live-session probability
	studyH, videoH                        float64 // mean hours
	visits, views                         float64 // mean counts
	attn, engaged, confused, bored, frust float64 // mean levels 0–1
	clicks, offTask, trend                float64 // click multiplier, off-task multiplier, change per window
}

var plantedProfiles = [3]planted{
	{ProfileMarginal, 52, 0.55, 0.40, 4, 2.5, 14, 9, 0.55, 0.35, 0.28, 0.38, 0.22, 0.45, 2.0, -0.15},
	{ProfileBalanced, 77, 0.66, 0.65, 8, 6, 28, 20, 0.68, 0.50, 0.18, 0.22, 0.13, 1.0, 1.0, 0},
	{ProfileDiligent, 84, 0.72, 0.82, 12, 10, 52, 42, 0.76, 0.62, 0.14, 0.14, 0.09, 1.7, 0.6, 0.05},
}

// clickBase is the mean count per window of each click kind for a balanced
// learner, in stream.ClickKinds order.
var clickBase = [14]float64{30, 15, 9, 12, 18, 9, 15, 12, 6, 12, 9, 6, 45, 3}

// GenerateCohort draws a cohort. Behaviour and grades are correlated
// through two hidden traits per student, effort (more clicks, study time,
// sign-ins and a better score) and ability (a better quiz and final score),
// on top of the planted profile.
func GenerateCohort(cfg CohortConfig) (*Cohort, error) {
	if cfg.Students < 1 || cfg.Students > 10_000_000 {
		return nil, fmt.Errorf("%w: students %d out of range 1..10000000", ErrBadInput, cfg.Students)
	}
	if cfg.Windows == 0 {
		cfg.Windows = DefaultWindows
	}
	if cfg.Windows < 1 || cfg.Windows > MaxWindows {
		return nil, fmt.Errorf("%w: windows %d out of range 1..%d", ErrBadInput, cfg.Windows, MaxWindows)
	}
	if cfg.Mix == [3]float64{} {
		cfg.Mix = [3]float64{0.10, 0.68, 0.22}
	}
	total := cfg.Mix[0] + cfg.Mix[1] + cfg.Mix[2]
	for _, m := range cfg.Mix {
		if m < 0 || math.IsNaN(m) || total <= 0 {
			return nil, fmt.Errorf("%w: profile mix %v must be non-negative with a positive sum", ErrBadInput, cfg.Mix)
		}
	}
	if cfg.ClassSize <= 0 {
		cfg.ClassSize = 40
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x636c617373707573))
	cols := FeatureNames(cfg.Windows)
	n := cfg.Students
	t := &Table{
		IDs:     make([]string, n),
		Columns: cols,
		Rows:    make([][]float64, n),
		Text:    map[string][]string{"class": make([]string, n)},
	}
	c := &Cohort{Table: t, Planted: make([]string, n), Grades: make([]string, n)}
	flat := make([]float64, n*len(cols))
	for i := range n {
		u := rng.Float64() * total
		p := &plantedProfiles[2]
		if u < cfg.Mix[0] {
			p = &plantedProfiles[0]
		} else if u < cfg.Mix[0]+cfg.Mix[1] {
			p = &plantedProfiles[1]
		}
		r := flat[i*len(cols) : (i+1)*len(cols)]
		final := drawStudent(rng, p, cfg.Windows, r)
		t.IDs[i] = fmt.Sprintf("s%07d", i+1)
		t.Text["class"][i] = fmt.Sprintf("c%04d", i/cfg.ClassSize+1)
		t.Rows[i] = r
		c.Planted[i] = p.name
		c.Grades[i] = GradeOf(final)
	}
	return c, nil
}

// drawStudent fills r (in FeatureNames order) for one student of profile p
// and returns the final score.
func drawStudent(rng *rand.Rand, p *planted, windows int, r []float64) float64 {
	effort, ability := rng.NormFloat64(), rng.NormFloat64()
	final := math.Round(clamp(p.final+7*ability+3*effort+4*rng.NormFloat64(), 0, 100)*10) / 10
	quiz := clamp(0.2*(p.final+7*ability+5*rng.NormFloat64()), 0, 20)
	act := math.Exp(0.15 * effort)
	k := 0
	put := func(v float64) { r[k] = v; k++ }
	// Behaviour.
	put(binomial(rng, 10, clamp(p.attend+0.07*effort, 0, 1)))
	put(binomial(rng, 12, clamp(p.live+0.05*effort, 0, 1)))
	put(math.Round(p.studyH * 3600 * math.Exp(0.35*effort+0.25*rng.NormFloat64())))
	put(math.Round(p.videoH * 3600 * math.Exp(0.35*effort+0.25*rng.NormFloat64())))
	// Outcome.
	put(math.Round(quiz*2) / 2)
	put(final)
	// Emotion.
	put(poisson(rng, p.visits*act))
	put(poisson(rng, p.views*act))
	put(round3(clamp(p.attn+0.03*effort+0.06*rng.NormFloat64(), 0, 1)))
	put(round3(clamp(p.engaged+0.04*effort+0.06*rng.NormFloat64(), 0, 1)))
	put(round3(clamp(p.confused+0.05*rng.NormFloat64(), 0, 1)))
	put(round3(clamp(p.bored-0.03*effort+0.06*rng.NormFloat64(), 0, 1)))
	put(round3(clamp(p.frust+0.05*rng.NormFloat64(), 0, 1)))
	// Windowed click counts.
	off := stream.KindIndex(stream.KindOffTask)
	for w := range windows {
		trend := math.Pow(1+p.trend, float64(w))
		for j, base := range clickBase {
			mult := p.clicks * act
			if j == off {
				mult = p.offTask / act
			}
			put(poisson(rng, base*mult*trend))
		}
	}
	return final
}

func clamp(v, lo, hi float64) float64 { return min(hi, max(lo, v)) }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func binomial(rng *rand.Rand, n int, p float64) float64 {
	k := 0
	for range n {
		if rng.Float64() < p {
			k++
		}
	}
	return float64(k)
}

// poisson draws a Poisson count: Knuth's product method for small means,
// a rounded normal for large ones, where it is accurate enough.
func poisson(rng *rand.Rand, lambda float64) float64 {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		return max(0, math.Round(lambda+math.Sqrt(lambda)*rng.NormFloat64()))
	}
	l := math.Exp(-lambda)
	k, prod := 0, rng.Float64()
	for prod > l {
		k++
		prod *= rng.Float64()
	}
	return float64(k)
}
