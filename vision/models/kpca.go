package models

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
)

// KPCA is kernel PCA with an RBF kernel k(x,y) = exp(-Gamma·|x-y|²),
// approximated with the Nyström method: with m landmark points L, the
// feature map φ(x) = Λ^-½ Uᵀ k_L(x) (U, Λ the eigenpairs of K_LL) makes
// kernel PCA an ordinary PCA of φ over the fit set. Fitting costs O(n·m·d +
// m³); projecting one vector costs O(m·d), microseconds for m=64, d=256.
type KPCA struct {
	Format     string      `json:"format"`  // "classpulse-kpca/1"
	Version    string      `json:"version"` // "kpca-" + content hash
	Gamma      float64     `json:"gamma"`
	Landmarks  [][]float32 `json:"landmarks"` // m × d
	Map        [][]float64 `json:"map"`       // m' × m: Λ^-½ Uᵀ
	Mean       []float64   `json:"mean"`      // m': mean of φ over the fit set
	Components [][]float64 `json:"components"`
	// ResidualP95 is the 95th percentile of the fit set's reconstruction
	// residual |φ-μ|² - |z|²; Novelty divides by it.
	ResidualP95 float64 `json:"residual_p95"`
	Samples     int     `json:"samples"`
}

// KPCAFormat names the file format version.
const KPCAFormat = "classpulse-kpca/1"

// FitKPCA fits k components on the rows of x using m Nyström landmarks
// (spread evenly over x, so the fit is deterministic). gamma ≤ 0 picks
// 1/median(|xi-xj|²) over the landmarks.
func FitKPCA(x [][]float32, m, k int, gamma float64) (*KPCA, error) {
	n := len(x)
	if n < 3 {
		return nil, fmt.Errorf("kpca: need at least 3 samples, got %d", n)
	}
	d := len(x[0])
	for i, r := range x {
		if len(r) != d || d == 0 {
			return nil, fmt.Errorf("kpca: sample %d has %d values, want %d", i, len(r), d)
		}
		for _, v := range r {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("kpca: sample %d is not finite", i)
			}
		}
	}
	m = min(max(m, 2), n)
	lm := make([][]float32, m)
	for i := range lm {
		lm[i] = append([]float32(nil), x[i*n/m]...)
	}
	if gamma <= 0 {
		var ds []float64
		for i := 0; i < m; i++ {
			for j := i + 1; j < m; j++ {
				ds = append(ds, sqDist(lm[i], lm[j]))
			}
		}
		sort.Float64s(ds)
		med := ds[len(ds)/2]
		if med <= 0 {
			return nil, errors.New("kpca: landmark samples are all identical")
		}
		gamma = 1 / med
	}
	kmm := make([][]float64, m)
	for i := range kmm {
		kmm[i] = make([]float64, m)
		for j := range kmm[i] {
			kmm[i][j] = math.Exp(-gamma * sqDist(lm[i], lm[j]))
		}
	}
	vals, vecs := symEigen(kmm)
	var mp [][]float64
	for i, l := range vals {
		if l < 1e-8*vals[0] {
			break
		}
		row := make([]float64, m)
		for j := 0; j < m; j++ {
			row[j] = vecs[j][i] / math.Sqrt(l)
		}
		mp = append(mp, row)
	}
	kp := &KPCA{Format: KPCAFormat, Gamma: gamma, Landmarks: lm, Map: mp, Samples: n}
	phis := make([][]float64, n)
	mean := make([]float64, len(mp))
	for i, r := range x {
		phis[i] = kp.phi(r, nil, nil)
		for j, v := range phis[i] {
			mean[j] += v / float64(n)
		}
	}
	kp.Mean = mean
	cov := make([][]float64, len(mp))
	for i := range cov {
		cov[i] = make([]float64, len(mp))
	}
	for _, p := range phis {
		for i := range p {
			di := p[i] - mean[i]
			for j := i; j < len(p); j++ {
				cov[i][j] += di * (p[j] - mean[j]) / float64(n)
			}
		}
	}
	for i := range cov {
		for j := 0; j < i; j++ {
			cov[i][j] = cov[j][i]
		}
	}
	_, cvecs := symEigen(cov)
	k = min(max(k, 1), len(mp))
	kp.Components = make([][]float64, k)
	for c := 0; c < k; c++ {
		kp.Components[c] = make([]float64, len(mp))
		for j := range mp {
			kp.Components[c][j] = cvecs[j][c]
		}
	}
	res := make([]float64, n)
	z := make([]float64, k)
	for i, r := range x {
		res[i] = kp.residual(r, z)
	}
	sort.Float64s(res)
	kp.ResidualP95 = max(res[(n*95)/100], 1e-9)
	kp.Version = "kpca-" + kp.hash()[:10]
	return kp, nil
}

func sqDist(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i] - b[i])
		s += d * d
	}
	return s
}

// phi computes the Nyström feature map into dst (allocated if nil); kbuf
// is scratch of length m (allocated if nil).
func (kp *KPCA) phi(x []float32, dst, kbuf []float64) []float64 {
	if kbuf == nil {
		kbuf = make([]float64, len(kp.Landmarks))
	}
	for i, l := range kp.Landmarks {
		kbuf[i] = math.Exp(-kp.Gamma * sqDist(x, l))
	}
	if dst == nil {
		dst = make([]float64, len(kp.Map))
	}
	for i, row := range kp.Map {
		var s float64
		for j, v := range row {
			s += v * kbuf[j]
		}
		dst[i] = s
	}
	return dst
}

// Projector projects feature vectors without allocating; one per goroutine.
type Projector struct {
	kp        *KPCA
	kbuf, phi []float64
}

// NewProjector returns a projector with its own scratch buffers.
func (kp *KPCA) NewProjector() *Projector {
	return &Projector{kp: kp, kbuf: make([]float64, len(kp.Landmarks)), phi: make([]float64, len(kp.Map))}
}

// Project writes the components of x into z (len = number of components)
// and returns the novelty: the reconstruction residual divided by the fit
// set's 95th percentile (≈1 or less for faces like the fit set).
func (p *Projector) Project(x []float32, z []float64) (novelty float64, err error) {
	kp := p.kp
	if len(x) != len(kp.Landmarks[0]) || len(z) != len(kp.Components) {
		return 0, fmt.Errorf("kpca: input %d/%d values, want %d/%d", len(x), len(z), len(kp.Landmarks[0]), len(kp.Components))
	}
	kp.phi(x, p.phi, p.kbuf)
	var total float64
	for i := range p.phi {
		p.phi[i] -= kp.Mean[i]
		total += p.phi[i] * p.phi[i]
	}
	var explained float64
	for c, comp := range kp.Components {
		var s float64
		for j, v := range comp {
			s += v * p.phi[j]
		}
		z[c] = s
		explained += s * s
	}
	return max(total-explained, 0) / kp.ResidualP95, nil
}

func (kp *KPCA) residual(x []float32, z []float64) float64 {
	p := kp.NewProjector()
	save := kp.ResidualP95
	kp.ResidualP95 = 1
	r, _ := p.Project(x, z)
	kp.ResidualP95 = save
	return r
}

func (kp *KPCA) hash() string {
	v := kp.Version
	kp.Version = ""
	b, _ := json.Marshal(kp)
	kp.Version = v
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Save writes the model file.
func (kp *KPCA) Save(path string) error {
	b, err := json.Marshal(kp)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// LoadKPCA reads and checks a model file written by Save.
func LoadKPCA(path string) (*KPCA, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: kpca: %v", ErrModel, err)
	}
	var kp KPCA
	if err := json.Unmarshal(b, &kp); err != nil {
		return nil, fmt.Errorf("%w: kpca %s: %v", ErrModel, path, err)
	}
	if kp.Format != KPCAFormat {
		return nil, fmt.Errorf("%w: kpca %s: format %q, want %q", ErrModel, path, kp.Format, KPCAFormat)
	}
	m := len(kp.Landmarks)
	if m < 2 || len(kp.Map) == 0 || len(kp.Mean) != len(kp.Map) || len(kp.Components) == 0 || !(kp.Gamma > 0) || !(kp.ResidualP95 > 0) {
		return nil, fmt.Errorf("%w: kpca %s: inconsistent sizes or parameters", ErrModel, path)
	}
	d := len(kp.Landmarks[0])
	for _, l := range kp.Landmarks {
		if len(l) != d {
			return nil, fmt.Errorf("%w: kpca %s: ragged landmarks", ErrModel, path)
		}
	}
	for _, r := range kp.Map {
		if len(r) != m {
			return nil, fmt.Errorf("%w: kpca %s: map rows must have %d values", ErrModel, path, m)
		}
	}
	for _, c := range kp.Components {
		if len(c) != len(kp.Map) {
			return nil, fmt.Errorf("%w: kpca %s: components must have %d values", ErrModel, path, len(kp.Map))
		}
	}
	if want := "kpca-" + kp.hash()[:10]; kp.Version != want {
		return nil, fmt.Errorf("%w: kpca %s: version %q does not match its content (%s)", ErrModel, path, kp.Version, want)
	}
	return &kp, nil
}

// symEigen returns the eigenvalues of the symmetric matrix a in descending
// order and the eigenvectors as columns of vecs (cyclic Jacobi rotations).
func symEigen(in [][]float64) (vals []float64, vecs [][]float64) {
	n := len(in)
	a := make([][]float64, n)
	v := make([][]float64, n)
	for i := range a {
		a[i] = append([]float64(nil), in[i]...)
		v[i] = make([]float64, n)
		v[i][i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		off := 0.0
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				off += a[i][j] * a[i][j]
			}
		}
		if off < 1e-22 {
			break
		}
		for p := 0; p < n; p++ {
			for q := p + 1; q < n; q++ {
				if math.Abs(a[p][q]) < 1e-300 {
					continue
				}
				theta := (a[q][q] - a[p][p]) / (2 * a[p][q])
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := 0; k < n; k++ {
					akp, akq := a[k][p], a[k][q]
					a[k][p], a[k][q] = c*akp-s*akq, s*akp+c*akq
				}
				for k := 0; k < n; k++ {
					apk, aqk := a[p][k], a[q][k]
					a[p][k], a[q][k] = c*apk-s*aqk, s*apk+c*aqk
				}
				for k := 0; k < n; k++ {
					vkp, vkq := v[k][p], v[k][q]
					v[k][p], v[k][q] = c*vkp-s*vkq, s*vkp+c*vkq
				}
			}
		}
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool { return a[idx[i]][idx[i]] > a[idx[j]][idx[j]] })
	vals = make([]float64, n)
	vecs = make([][]float64, n)
	for r := range vecs {
		vecs[r] = make([]float64, n)
	}
	for c, i := range idx {
		vals[c] = a[i][i]
		for r := 0; r < n; r++ {
			vecs[r][c] = v[r][i]
		}
	}
	return vals, vecs
}
