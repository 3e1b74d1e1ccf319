package profile

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

func TestKMeansRecoversPlantedProfiles(t *testing.T) {
	c := testCohort()
	x := FitScaler(c.Table.Rows, len(c.Table.Columns)).Transform(c.Table.Rows)
	cl, err := KMeans(x, KMeansConfig{K: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if ari := AdjustedRandIndex(plantedLabels(c), cl.Assign); ari < 0.8 {
		t.Fatalf("adjusted Rand index %.3f against the planted profiles, want ≥ 0.8", ari)
	}
}

func TestElbowPicksThreeOnTheCohort(t *testing.T) {
	c := testCohort()
	x := FitScaler(c.Table.Rows, len(c.Table.Columns)).Transform(c.Table.Rows)
	k, curve, err := Elbow(x[:2000], 8, KMeansConfig{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if k != 3 {
		t.Fatalf("elbow k = %d, want 3 (curve %v)", k, curve)
	}
	for i := 1; i < len(curve); i++ {
		if curve[i] > curve[i-1]*1.001 {
			t.Errorf("inertia rises from k=%d to k=%d: %v", i, i+1, curve)
		}
	}
}

func TestElbowOfCurves(t *testing.T) {
	tests := []struct {
		name  string
		curve []float64
		want  int
	}{
		{"sharp knee at 2", []float64{100, 20, 18, 16, 15}, 2},
		{"knee at 4", []float64{100, 80, 60, 20, 18, 17}, 4},
		{"flat curve", []float64{10, 10, 10}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := elbowOf(tc.curve); got != tc.want {
				t.Fatalf("elbowOf(%v) = %d, want %d", tc.curve, got, tc.want)
			}
		})
	}
}

func TestKMeansIsReproducibleAcrossCoreCounts(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	x := make([][]float64, 3000)
	for i := range x {
		c := float64(i % 4)
		x[i] = []float64{c + rng.NormFloat64()*0.3, -c + rng.NormFloat64()*0.3, rng.Float64()}
	}
	a, _ := KMeans(x, KMeansConfig{K: 4, Seed: 9})
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b, _ := KMeans(x, KMeansConfig{K: 4, Seed: 9})
	if a.Inertia != b.Inertia {
		t.Fatalf("same seed, inertia %v then %v", a.Inertia, b.Inertia)
	}
	for i := range a.Assign {
		if a.Assign[i] != b.Assign[i] {
			t.Fatalf("row %d assigned %d then %d", i, a.Assign[i], b.Assign[i])
		}
	}
}

func TestKMeansRejectsTooFewRows(t *testing.T) {
	if _, err := KMeans([][]float64{{1}, {2}}, KMeansConfig{K: 3}); err == nil {
		t.Fatal("k=3 on 2 rows accepted")
	}
}

func TestKMeansHandlesDuplicateRows(t *testing.T) {
	x := make([][]float64, 50)
	for i := range x {
		x[i] = []float64{1, 1}
	}
	x[49] = []float64{5, 5}
	cl, err := KMeans(x, KMeansConfig{K: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if math.IsNaN(cl.Inertia) || cl.Inertia > 1e-9 {
		t.Fatalf("inertia %v on two distinct points with k=3", cl.Inertia)
	}
}

func TestAdjustedRandIndex(t *testing.T) {
	tests := []struct {
		name string
		a, b []int
		want float64
	}{
		{"identical up to renaming", []int{0, 0, 1, 1, 2, 2}, []int{2, 2, 0, 0, 1, 1}, 1},
		{"one cluster each", []int{0, 0, 0}, []int{1, 1, 1}, 1},
		{"known value", []int{0, 0, 1, 1}, []int{0, 0, 0, 1}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := AdjustedRandIndex(tc.a, tc.b); math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("ARI = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFitPCAFindsTheMainAxis(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([][]float64, 2000)
	for i := range x {
		s := rng.NormFloat64() * 3
		x[i] = []float64{s + rng.NormFloat64()*0.1, s + rng.NormFloat64()*0.1, rng.NormFloat64() * 0.5}
	}
	p := FitPCA(x, 2)
	c := p.Components[0]
	if math.Abs(c[0]-1/math.Sqrt2) > 0.02 || math.Abs(c[1]-1/math.Sqrt2) > 0.02 || math.Abs(c[2]) > 0.02 {
		t.Fatalf("first component %v, want (0.707, 0.707, 0)", c)
	}
	if p.Explained[0] < 0.95 || p.Explained[0]+p.Explained[1] > 1+1e-9 {
		t.Fatalf("explained %v", p.Explained)
	}
	dot := 0.0
	for j := range c {
		dot += c[j] * p.Components[1][j]
	}
	if math.Abs(dot) > 1e-9 {
		t.Fatalf("components not orthogonal: dot %v", dot)
	}
}

func BenchmarkKMeans(b *testing.B) {
	c, err := GenerateCohort(CohortConfig{Students: 20000, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	x := FitScaler(c.Table.Rows, len(c.Table.Columns)).Transform(c.Table.Rows)
	b.ResetTimer()
	for b.Loop() {
		if _, err := KMeans(x, KMeansConfig{K: 3, Seed: 1, Restarts: 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(x)), "students")
}
