package profile

import (
	"math"
	"sort"
)

// PCA is a principal-component projection fitted to a set of rows.
type PCA struct {
	Mean       []float64
	Components [][]float64 // unit vectors, the largest variance first
	// Explained is the share of the total variance each component carries.
	Explained []float64
}

// FitPCA fits the first n principal components of x by an exact eigen
// decomposition of the covariance matrix (Jacobi rotations), which is
// cheap for the few dozen features of a profile table. The sign of each
// component is fixed (largest coefficient positive) so plots are stable.
func FitPCA(x [][]float64, n int) *PCA {
	d := len(x[0])
	n = min(n, d)
	mean := make([]float64, d)
	for _, r := range x {
		for j, v := range r {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(len(x))
	}
	cov := make([][]float64, d)
	for j := range cov {
		cov[j] = make([]float64, d)
	}
	c := make([]float64, d)
	for _, r := range x {
		for j, v := range r {
			c[j] = v - mean[j]
		}
		for a := range d {
			ca := c[a]
			row := cov[a]
			for b := a; b < d; b++ {
				row[b] += ca * c[b]
			}
		}
	}
	for a := range d {
		for b := a; b < d; b++ {
			cov[a][b] /= float64(max(1, len(x)-1))
			cov[b][a] = cov[a][b]
		}
	}
	vals, vecs := jacobiEigen(cov)
	order := make([]int, d)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return vals[order[a]] > vals[order[b]] })
	total := 0.0
	for _, v := range vals {
		total += max(0, v)
	}
	p := &PCA{Mean: mean}
	for _, o := range order[:n] {
		comp := make([]float64, d)
		big := 0.0
		for j := range d {
			comp[j] = vecs[j][o]
			if math.Abs(comp[j]) > math.Abs(big) {
				big = comp[j]
			}
		}
		if big < 0 {
			for j := range comp {
				comp[j] = -comp[j]
			}
		}
		p.Components = append(p.Components, comp)
		share := 0.0
		if total > 0 {
			share = max(0, vals[o]) / total
		}
		p.Explained = append(p.Explained, share)
	}
	return p
}

// Project returns the coordinates of row r on the components.
func (p *PCA) Project(r []float64) []float64 {
	out := make([]float64, len(p.Components))
	for k, comp := range p.Components {
		s := 0.0
		for j, v := range r {
			s += (v - p.Mean[j]) * comp[j]
		}
		out[k] = s
	}
	return out
}

// jacobiEigen returns the eigenvalues and eigenvectors (as columns) of a
// symmetric matrix by cyclic Jacobi rotations. a is overwritten.
func jacobiEigen(a [][]float64) ([]float64, [][]float64) {
	n := len(a)
	v := make([][]float64, n)
	for i := range v {
		v[i] = make([]float64, n)
		v[i][i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		off := 0.0
		for p := range n {
			for q := p + 1; q < n; q++ {
				off += a[p][q] * a[p][q]
			}
		}
		if off < 1e-22 {
			break
		}
		for p := range n {
			for q := p + 1; q < n; q++ {
				if math.Abs(a[p][q]) < 1e-300 {
					continue
				}
				theta := (a[q][q] - a[p][p]) / (2 * a[p][q])
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := range n {
					akp, akq := a[k][p], a[k][q]
					a[k][p] = c*akp - s*akq
					a[k][q] = s*akp + c*akq
				}
				for k := range n {
					apk, aqk := a[p][k], a[q][k]
					a[p][k] = c*apk - s*aqk
					a[q][k] = s*apk + c*aqk
				}
				for k := range n {
					vkp, vkq := v[k][p], v[k][q]
					v[k][p] = c*vkp - s*vkq
					v[k][q] = s*vkp + c*vkq
				}
			}
		}
	}
	vals := make([]float64, n)
	for i := range n {
		vals[i] = a[i][i]
	}
	return vals, v
}
