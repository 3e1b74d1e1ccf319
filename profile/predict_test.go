package profile

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

// testComparison runs the model comparison once on the shared cohort.
var testComparison = sync.OnceValues(func() (*Comparison, error) {
	ds, err := NewDataset(testCohort().Table, nil, ColFinalScore)
	if err != nil {
		return nil, err
	}
	return Compare(ds, TrainConfig{Seed: 3})
})

func TestPredictorBeatsMajorityClassOnHeldOutStudents(t *testing.T) {
	cmp, err := testComparison()
	if err != nil {
		t.Fatal(err)
	}
	gbt, maj := cmp.Result(NameGBT), cmp.Result(NameMajority)
	if len(cmp.Test) < 700 {
		t.Fatalf("%d held-out students, want 20 %% of 4000", len(cmp.Test))
	}
	if gbt.Metrics.Accuracy < maj.Metrics.Accuracy+0.10 {
		t.Fatalf("GBT accuracy %.3f, majority class %.3f: want a margin of at least 10 points", gbt.Metrics.Accuracy, maj.Metrics.Accuracy)
	}
	if gbt.Metrics.MacroF1 < 0.5 {
		t.Fatalf("GBT macro F1 %.3f, want ≥ 0.5", gbt.Metrics.MacroF1)
	}
}

func TestGBTIsComparedWithBaselinesOnTheCohort(t *testing.T) {
	cmp, err := testComparison()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{NameGBT, NameLogistic, NameForest, NameMajority}
	if len(cmp.Results) != len(want) {
		t.Fatalf("%d results, want %v", len(cmp.Results), want)
	}
	gbt := cmp.Results[0].Metrics.Accuracy
	for i, r := range cmp.Results {
		if r.Name != want[i] || r.Metrics.Rows != len(cmp.Test) || len(r.Metrics.PerClass) != 4 {
			t.Fatalf("result %d: %s on %d rows with %d classes", i, r.Name, r.Metrics.Rows, len(r.Metrics.PerClass))
		}
		t.Logf("%-24s accuracy %.3f macro-F1 %.3f", r.Name, r.Metrics.Accuracy, r.Metrics.MacroF1)
		// On this mostly additive cohort the three models are close; GBT
		// must not fall clearly behind either baseline.
		if r.Name != NameMajority && gbt < r.Metrics.Accuracy-0.03 {
			t.Errorf("GBT accuracy %.3f falls more than 3 points behind %s (%.3f)", gbt, r.Name, r.Metrics.Accuracy)
		}
	}
}

// xorData is a task no linear model can learn: the class is the sign of
// x0·x1.
func xorData(n int, seed uint64) ([][]float64, []int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := make([][]float64, n)
	y := make([]int, n)
	for i := range x {
		a, b := rng.Float64()*2-1, rng.Float64()*2-1
		x[i] = []float64{a, b, rng.Float64()}
		if a*b > 0 {
			y[i] = 1
		}
	}
	return x, y
}

func TestGBTLearnsInteractionsLogisticRegressionCannot(t *testing.T) {
	x, y := xorData(3000, 1)
	xt, yt := xorData(1000, 2)
	acc := func(p interface{ Proba([]float64) []float64 }) float64 {
		ok := 0
		for i, r := range xt {
			if argmax(p.Proba(r)) == yt[i] {
				ok++
			}
		}
		return float64(ok) / float64(len(xt))
	}
	g, err := TrainGBT(x, y, 2, GBTConfig{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	f, err := TrainForest(x, y, 2, ForestConfig{Seed: 1, Trees: 30})
	if err != nil {
		t.Fatal(err)
	}
	l, err := TrainLogistic(x, y, 2, LogisticConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if a := acc(g); a < 0.93 {
		t.Errorf("GBT accuracy on XOR %.3f, want ≥ 0.93", a)
	}
	if a := acc(f); a < 0.93 {
		t.Errorf("forest accuracy on XOR %.3f, want ≥ 0.93", a)
	}
	if a := acc(l); a > 0.65 {
		t.Errorf("logistic regression accuracy on XOR %.3f: the task is not what the test thinks", a)
	}
}

func TestLogisticRegressionLearnsLinearClasses(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	x := make([][]float64, 2000)
	y := make([]int, 2000)
	for i := range x {
		c := i % 3
		x[i] = []float64{float64(c)*2 + rng.NormFloat64()*0.5, rng.NormFloat64()}
		y[i] = c
	}
	m, err := TrainLogistic(x, y, 3, LogisticConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for i, r := range x {
		p := m.Proba(r)
		if s := p[0] + p[1] + p[2]; math.Abs(s-1) > 1e-9 {
			t.Fatalf("probabilities sum to %v", s)
		}
		if argmax(p) == y[i] {
			ok++
		}
	}
	if a := float64(ok) / 2000; a < 0.93 {
		t.Fatalf("accuracy %.3f on well separated classes", a)
	}
}

func TestTrainingIsDeterministicAcrossCoreCounts(t *testing.T) {
	x, y := xorData(1500, 3)
	g1, _ := TrainGBT(x, y, 2, GBTConfig{Seed: 5, Rounds: 20})
	f1, _ := TrainForest(x, y, 2, ForestConfig{Seed: 5, Trees: 8})
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	g2, _ := TrainGBT(x, y, 2, GBTConfig{Seed: 5, Rounds: 20})
	f2, _ := TrainForest(x, y, 2, ForestConfig{Seed: 5, Trees: 8})
	for _, r := range x[:200] {
		if a, b := g1.Proba(r), g2.Proba(r); a[0] != b[0] {
			t.Fatalf("GBT differs: %v vs %v", a, b)
		}
		if a, b := f1.Proba(r), f2.Proba(r); a[0] != b[0] {
			t.Fatalf("forest differs: %v vs %v", a, b)
		}
	}
}

func TestTrainingRejectsUnusableSets(t *testing.T) {
	tests := []struct {
		name    string
		x       [][]float64
		y       []int
		classes int
	}{
		{"one class", [][]float64{{1}, {2}}, []int{0, 0}, 1},
		{"NaN cell", [][]float64{{1}, {math.NaN()}}, []int{0, 1}, 2},
		{"ragged rows", [][]float64{{1}, {2, 3}}, []int{0, 1}, 2},
		{"class out of range", [][]float64{{1}, {2}}, []int{0, 2}, 2},
		{"one row", [][]float64{{1}}, []int{0}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := TrainGBT(tc.x, tc.y, tc.classes, GBTConfig{}); err == nil {
				t.Error("GBT accepted it")
			}
			if _, err := TrainForest(tc.x, tc.y, tc.classes, ForestConfig{}); err == nil {
				t.Error("forest accepted it")
			}
			if _, err := TrainLogistic(tc.x, tc.y, tc.classes, LogisticConfig{}); err == nil {
				t.Error("logistic regression accepted it")
			}
		})
	}
}

func TestEvaluateComputesPerClassFigures(t *testing.T) {
	m := Evaluate([]string{"A", "B", "C"}, []int{0, 0, 1, 1, 1, 2}, []int{0, 1, 1, 1, 0, 1})
	if math.Abs(m.Accuracy-0.5) > 1e-12 {
		t.Fatalf("accuracy %v", m.Accuracy)
	}
	a, b, c := m.PerClass[0], m.PerClass[1], m.PerClass[2]
	if a.Precision != 0.5 || a.Recall != 0.5 || b.Precision != 0.5 || math.Abs(b.Recall-2.0/3) > 1e-12 || c.F1 != 0 || c.Support != 1 {
		t.Fatalf("per class %+v", m.PerClass)
	}
	if m.Confusion[1][0] != 1 || m.Confusion[2][1] != 1 {
		t.Fatalf("confusion %v", m.Confusion)
	}
}

func TestStratifiedSplitHoldsOutEveryClass(t *testing.T) {
	y := make([]int, 1000)
	for i := range y {
		y[i] = i % 10 / 7 // 70 % class 0, 30 % class 1
	}
	tr, te := StratifiedSplit(y, 0.2, 1)
	if len(tr)+len(te) != 1000 || len(te) != 200 {
		t.Fatalf("split %d + %d", len(tr), len(te))
	}
	ones := 0
	for _, i := range te {
		ones += y[i]
	}
	if ones != 60 {
		t.Fatalf("%d of class 1 held out, want 60", ones)
	}
	tr2, _ := StratifiedSplit(y, 0.2, 1)
	for i := range tr {
		if tr[i] != tr2[i] {
			t.Fatal("split differs for the same seed")
		}
	}
}

func BenchmarkGBTPredict(b *testing.B) {
	ds, err := NewDataset(testCohort().Table, nil, ColFinalScore)
	if err != nil {
		b.Fatal(err)
	}
	m, err := Fit(ds, TrainConfig{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		m.Predict(ds.X[i%len(ds.X)])
		i++
	}
}

func BenchmarkGBTTrain(b *testing.B) {
	ds, err := NewDataset(testCohort().Table, nil, ColFinalScore)
	if err != nil {
		b.Fatal(err)
	}
	x, y, _ := ds.subset(allRows(len(ds.Y)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := TrainGBT(x, y, len(ds.Classes), GBTConfig{Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(x)), "students")
}

// allRows returns every index, for benchmarks on a whole set.
func allRows(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}
