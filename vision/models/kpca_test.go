package models

import (
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ring returns n points near a circle embedded in d dimensions: a structure
// linear PCA cannot flatten but an RBF kernel PCA orders by angle.
func ring(n, d int, seed int64) [][]float32 {
	r := rand.New(rand.NewSource(seed))
	out := make([][]float32, n)
	for i := range out {
		a := 2 * math.Pi * float64(i) / float64(n)
		v := make([]float32, d)
		v[0], v[1] = float32(math.Cos(a)), float32(math.Sin(a))
		for j := range v {
			v[j] += float32(r.NormFloat64() * 0.02)
		}
		out[i] = v
	}
	return out
}

func TestSymEigenReconstructsMatrix(t *testing.T) {
	a := [][]float64{{4, 1, 0.5}, {1, 3, 0.2}, {0.5, 0.2, 1}}
	vals, vecs := symEigen(a)
	if !(vals[0] >= vals[1] && vals[1] >= vals[2]) {
		t.Fatalf("eigenvalues not descending: %v", vals)
	}
	for i := range a {
		for j := range a {
			var s float64
			for k := range vals {
				s += vecs[i][k] * vals[k] * vecs[j][k]
			}
			if math.Abs(s-a[i][j]) > 1e-9 {
				t.Fatalf("V Λ Vᵀ[%d][%d] = %v, want %v", i, j, s, a[i][j])
			}
		}
	}
}

func TestKPCASeparatesOutliersAndRoundTrips(t *testing.T) {
	x := ring(400, 256, 1)
	start := time.Now()
	kp, err := FitKPCA(x, 64, 16, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fit 400×256, m=64, k=16 in %v", time.Since(start))
	p := kp.NewProjector()
	z := make([]float64, 16)
	inlier, err := p.Project(ring(7, 256, 2)[3], z)
	if err != nil {
		t.Fatal(err)
	}
	far := make([]float32, 256)
	for i := range far {
		far[i] = 0.3
	}
	outlier, _ := p.Project(far, z)
	if !(inlier < 1.5 && outlier > 3*inlier) {
		t.Fatalf("novelty inlier %.3f outlier %.3f: an off-manifold point must stand out", inlier, outlier)
	}
	path := filepath.Join(t.TempDir(), "kpca.json")
	if err := kp.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadKPCA(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Version != kp.Version || back.Version == "" {
		t.Fatalf("version %q after load, want %q", back.Version, kp.Version)
	}
	z2 := make([]float64, 16)
	back.NewProjector().Project(x[5], z2)
	p.Project(x[5], z)
	for i := range z {
		if math.Abs(z[i]-z2[i]) > 1e-9 {
			t.Fatalf("component %d differs after reload", i)
		}
	}
}

func TestLoadKPCARejectsBadFiles(t *testing.T) {
	kp, err := FitKPCA(ring(50, 8, 1), 16, 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	kp.Save(good)
	b, _ := os.ReadFile(good)
	tampered := append([]byte(nil), b...)
	for i := range tampered {
		if tampered[i] == '1' {
			tampered[i] = '2'
			break
		}
	}
	tests := map[string][]byte{
		"empty":     {},
		"truncated": b[:len(b)/2],
		"tampered":  tampered,
		"other":     []byte(`{"format":"other"}`),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name+".json")
			os.WriteFile(p, data, 0o644)
			if _, err := LoadKPCA(p); err == nil {
				t.Fatal("bad kpca file accepted")
			}
		})
	}
	if _, err := LoadKPCA(filepath.Join(dir, "missing.json")); err == nil {
		t.Fatal("missing kpca file accepted")
	}
}

func TestFitKPCARejectsUnusableInput(t *testing.T) {
	same := [][]float32{{1, 2}, {1, 2}, {1, 2}}
	nan := [][]float32{{1, 2}, {float32(math.NaN()), 2}, {3, 4}}
	for name, x := range map[string][][]float32{"too few": {{1}}, "identical": same, "nan": nan, "ragged": {{1, 2}, {1}, {2, 3}}} {
		if _, err := FitKPCA(x, 8, 2, 0); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func BenchmarkKPCAFit(b *testing.B) {
	x := ring(1000, 256, 1)
	for i := 0; i < b.N; i++ {
		if _, err := FitKPCA(x, 64, 16, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKPCAProject(b *testing.B) {
	x := ring(400, 256, 1)
	kp, _ := FitKPCA(x, 64, 16, 0)
	p := kp.NewProjector()
	z := make([]float64, 16)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.Project(x[i%len(x)], z)
	}
}
