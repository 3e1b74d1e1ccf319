package profile

import (
	"math"
	"runtime"
	"sync"
)

// LogisticConfig configures multinomial logistic regression. The zero value
// works.
type LogisticConfig struct {
	// Iter is the number of full-batch gradient steps; default 200.
	Iter int
	// L2 is the ridge penalty on the weights; default 1e-3.
	L2 float64
}

// Logistic is multinomial (softmax) logistic regression on standardised
// features.
type Logistic struct {
	Classes int         `json:"classes"`
	Mean    []float64   `json:"mean"`
	Std     []float64   `json:"std"`
	W       [][]float64 `json:"w"` // per class: bias, then one weight per feature
}

// TrainLogistic fits the model by Nesterov-accelerated gradient descent
// with a step of 1/L, where L bounds the curvature of the loss (estimated by
// power iteration on the standardised data). It is deterministic: partial
// gradients of fixed chunks are summed in a fixed order.
func TrainLogistic(x [][]float64, y []int, classes int, cfg LogisticConfig) (*Logistic, error) {
	if err := checkTrainingSet(x, y, classes); err != nil {
		return nil, err
	}
	if cfg.Iter <= 0 {
		cfg.Iter = 200
	}
	if cfg.L2 <= 0 {
		cfg.L2 = 1e-3
	}
	n, d, K := len(x), len(x[0]), classes
	m := &Logistic{Classes: K, Mean: make([]float64, d), Std: make([]float64, d)}
	for _, r := range x {
		for j, v := range r {
			m.Mean[j] += v
		}
	}
	for j := range d {
		m.Mean[j] /= float64(n)
	}
	for _, r := range x {
		for j, v := range r {
			dv := v - m.Mean[j]
			m.Std[j] += dv * dv
		}
	}
	for j := range d {
		m.Std[j] = math.Sqrt(m.Std[j] / float64(n))
		if m.Std[j] == 0 {
			m.Std[j] = 1
		}
	}
	// Standardised design with a leading 1 for the bias.
	z := make([][]float64, n)
	flat := make([]float64, n*(d+1))
	for i, r := range x {
		zi := flat[i*(d+1) : (i+1)*(d+1)]
		zi[0] = 1
		for j, v := range r {
			zi[j+1] = (v - m.Mean[j]) / m.Std[j]
		}
		z[i] = zi
	}
	// The softmax loss has curvature at most λmax(ZᵀZ/n)/2 per class.
	L := largestEigen(z)/2 + cfg.L2
	step := 1 / L
	W := newMatrix(K, d+1)
	V := newMatrix(K, d+1) // look-ahead point
	prev := newMatrix(K, d+1)
	grad := newMatrix(K, d+1)
	const chunks = 16
	parts := make([][][]float64, chunks)
	for c := range parts {
		parts[c] = newMatrix(K, d+1)
	}
	workers := min(runtime.GOMAXPROCS(0), chunks)
	for it := 1; it <= cfg.Iter; it++ {
		var wg sync.WaitGroup
		next := make(chan int, chunks)
		for c := range chunks {
			next <- c
		}
		close(next)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := make([]float64, K)
				for c := range next {
					part := parts[c]
					for k := range part {
						clear(part[k])
					}
					for i := c * n / chunks; i < (c+1)*n/chunks; i++ {
						zi := z[i]
						for k := range K {
							s := 0.0
							for j, v := range zi {
								s += V[k][j] * v
							}
							p[k] = s
						}
						softmaxInto(p, p)
						p[y[i]]--
						for k := range K {
							pk := p[k]
							row := part[k]
							for j, v := range zi {
								row[j] += pk * v
							}
						}
					}
				}
			}()
		}
		wg.Wait()
		for k := range K {
			clear(grad[k])
			for c := range chunks {
				for j, v := range parts[c][k] {
					grad[k][j] += v
				}
			}
			for j := range grad[k] {
				grad[k][j] /= float64(n)
				if j > 0 {
					grad[k][j] += cfg.L2 * V[k][j]
				}
			}
		}
		mom := float64(it-1) / float64(it+2)
		for k := range K {
			copy(prev[k], W[k])
			for j := range W[k] {
				W[k][j] = V[k][j] - step*grad[k][j]
				V[k][j] = W[k][j] + mom*(W[k][j]-prev[k][j])
			}
		}
	}
	m.W = W
	return m, nil
}

// Proba returns the class probabilities of one feature vector.
func (m *Logistic) Proba(x []float64) []float64 {
	p := make([]float64, m.Classes)
	for k, w := range m.W {
		s := w[0]
		for j, v := range x {
			s += w[j+1] * (v - m.Mean[j]) / m.Std[j]
		}
		p[k] = s
	}
	softmaxInto(p, p)
	return p
}

func newMatrix(r, c int) [][]float64 {
	flat := make([]float64, r*c)
	m := make([][]float64, r)
	for i := range m {
		m[i] = flat[i*c : (i+1)*c]
	}
	return m
}

// largestEigen estimates the largest eigenvalue of ZᵀZ/n by power
// iteration; a slight overestimate only makes the steps safer.
func largestEigen(z [][]float64) float64 {
	d := len(z[0])
	v := make([]float64, d)
	for j := range v {
		v[j] = 1 / math.Sqrt(float64(d))
	}
	w := make([]float64, d)
	lam := 1.0
	for range 30 {
		clear(w)
		for _, zi := range z {
			s := 0.0
			for j, x := range zi {
				s += x * v[j]
			}
			for j, x := range zi {
				w[j] += s * x
			}
		}
		norm := 0.0
		for j := range w {
			w[j] /= float64(len(z))
			norm += w[j] * w[j]
		}
		norm = math.Sqrt(norm)
		if norm == 0 {
			return 1
		}
		lam = norm
		for j := range v {
			v[j] = w[j] / norm
		}
	}
	return lam * 1.05
}
