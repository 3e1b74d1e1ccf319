package profile

import (
	"math/rand/v2"
	"slices"
)

// ClassMetrics are the one-vs-rest figures of one class.
type ClassMetrics struct {
	Class     string  `json:"class"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"` // true members in the evaluated rows
}

// Metrics summarise a classifier on labelled rows.
type Metrics struct {
	Rows      int            `json:"rows"`
	Accuracy  float64        `json:"accuracy"`
	MacroF1   float64        `json:"macro_f1"`
	Weighted  float64        `json:"weighted_f1"` // F1 weighted by support
	PerClass  []ClassMetrics `json:"per_class"`
	Confusion [][]int        `json:"confusion"` // [truth][predicted]
}

// Evaluate compares predicted classes with the truth. A class that is never
// predicted has precision 0; one absent from the truth has recall 0 and is
// left out of the macro average.
func Evaluate(classes []string, truth, pred []int) Metrics {
	K := len(classes)
	m := Metrics{Rows: len(truth), Confusion: make([][]int, K)}
	for k := range m.Confusion {
		m.Confusion[k] = make([]int, K)
	}
	correct := 0
	for i, t := range truth {
		m.Confusion[t][pred[i]]++
		if t == pred[i] {
			correct++
		}
	}
	if len(truth) > 0 {
		m.Accuracy = float64(correct) / float64(len(truth))
	}
	present := 0
	for k, name := range classes {
		tp := m.Confusion[k][k]
		support, predicted := 0, 0
		for j := range K {
			support += m.Confusion[k][j]
			predicted += m.Confusion[j][k]
		}
		cm := ClassMetrics{Class: name, Support: support}
		if predicted > 0 {
			cm.Precision = float64(tp) / float64(predicted)
		}
		if support > 0 {
			cm.Recall = float64(tp) / float64(support)
		}
		if cm.Precision+cm.Recall > 0 {
			cm.F1 = 2 * cm.Precision * cm.Recall / (cm.Precision + cm.Recall)
		}
		if support > 0 {
			present++
			m.MacroF1 += cm.F1
			m.Weighted += cm.F1 * float64(support)
		}
		m.PerClass = append(m.PerClass, cm)
	}
	if present > 0 {
		m.MacroF1 /= float64(present)
	}
	if len(truth) > 0 {
		m.Weighted /= float64(len(truth))
	}
	return m
}

// StratifiedSplit splits row indices 0..len(y)-1 into a training and a
// held-out part, holding out the share holdout of every class (at least one
// row of a class with two or more). The split depends only on y and seed.
func StratifiedSplit(y []int, holdout float64, seed uint64) (train, test []int) {
	rng := rand.New(rand.NewPCG(seed, 0x73706c6974))
	byClass := map[int][]int{}
	for i, c := range y {
		byClass[c] = append(byClass[c], i)
	}
	keys := make([]int, 0, len(byClass))
	for c := range byClass {
		keys = append(keys, c)
	}
	slices.Sort(keys)
	for _, c := range keys {
		idx := byClass[c]
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		nt := int(float64(len(idx))*holdout + 0.5)
		if nt == 0 && holdout > 0 && len(idx) >= 2 {
			nt = 1
		}
		test = append(test, idx[:nt]...)
		train = append(train, idx[nt:]...)
	}
	slices.Sort(train)
	slices.Sort(test)
	return train, test
}

// majorityClass returns the most frequent class of y (the lowest index on
// a tie).
func majorityClass(y []int, classes int) int {
	counts := make([]int, classes)
	for _, c := range y {
		counts[c]++
	}
	best := 0
	for c, n := range counts {
		if n > counts[best] {
			best = c
		}
	}
	return best
}

func argmax(p []float64) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}
