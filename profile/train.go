package profile

import (
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// TrainConfig configures grade prediction. The zero value works.
type TrainConfig struct {
	// Seed makes the split and every model reproducible.
	Seed uint64
	// Holdout is the share of students held out to compare the models;
	// default 0.2.
	Holdout float64
	// GBT, Forest and Logistic configure the three models; their seeds
	// are derived from Seed.
	GBT      GBTConfig
	Forest   ForestConfig
	Logistic LogisticConfig
	// Logger receives progress; default discards.
	Logger *slog.Logger
}

func (c *TrainConfig) defaults() {
	if c.Holdout <= 0 || c.Holdout >= 1 {
		c.Holdout = 0.2
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.GBT.Seed = c.Seed
	c.Forest.Seed = c.Seed
}

// Dataset is a labelled feature matrix ready for training.
type Dataset struct {
	Label    string
	Features []string
	X        [][]float64 // raw, NaN where missing
	Classes  []string
	Y        []int
}

// NewDataset takes the features and the label out of t. The label is t's
// label column when it was read with one, otherwise the feature column
// named label (such as final_score, which then is no feature). features
// nil means every feature column but the label.
func NewDataset(t *Table, features []string, label string) (*Dataset, error) {
	labels := t.Labels
	if len(labels) != t.Len() {
		j := t.Column(label)
		if j < 0 {
			return nil, badInput("the table has no label column %q", label)
		}
		labels = make([]string, t.Len())
		for i, r := range t.Rows {
			v := r[j]
			if v != v {
				return nil, &InputError{Source: "label " + label, Total: 1, Rows: []*RowError{{Row: i + 1, Column: label, Reason: "label is missing"}}}
			}
			labels[i] = fmt.Sprint(v)
		}
	}
	if features == nil {
		for _, c := range t.Columns {
			if c != label {
				features = append(features, c)
			}
		}
	}
	if slices.Contains(features, label) {
		return nil, badInput("the label %q cannot also be a feature", label)
	}
	x, err := t.Select(features)
	if err != nil {
		return nil, err
	}
	classes, y, err := LabelsToClasses(labels)
	if err != nil {
		return nil, err
	}
	if len(classes) > maxModelClasses {
		return nil, badInput("label %q has %d distinct values; a class label has at most %d", label, len(classes), maxModelClasses)
	}
	return &Dataset{Label: label, Features: features, X: x, Classes: classes, Y: y}, nil
}

// subset returns rows idx of ds with missing cells imputed by the medians
// of those rows.
func (ds *Dataset) subset(idx []int) (x [][]float64, y []int, medians []float64) {
	x = make([][]float64, len(idx))
	y = make([]int, len(idx))
	flat := make([]float64, len(idx)*len(ds.Features))
	for k, i := range idx {
		x[k] = flat[k*len(ds.Features) : (k+1)*len(ds.Features)]
		copy(x[k], ds.X[i])
		y[k] = ds.Y[i]
	}
	medians = Medians(x, len(ds.Features))
	Impute(x, medians)
	return x, y, medians
}

// Model names in a Comparison.
const (
	NameGBT      = "gradient-boosted trees"
	NameLogistic = "logistic regression"
	NameForest   = "random forest"
	NameMajority = "majority class"
)

// ModelResult is one model's figures on the held-out students.
type ModelResult struct {
	Name    string  `json:"name"`
	Metrics Metrics `json:"metrics"`
	Seconds float64 `json:"train_seconds"`
	Pred    []int   `json:"-"` // predicted class of each Test row
}

// Comparison holds the models compared on the same held-out students.
type Comparison struct {
	Classes []string      `json:"classes"`
	Train   []int         `json:"-"` // row indices of the dataset
	Test    []int         `json:"-"`
	Truth   []int         `json:"-"`       // true class of each Test row
	Results []ModelResult `json:"results"` // GBT first, the majority-class baseline last
}

// Result returns the figures of the named model, or nil.
func (c *Comparison) Result(name string) *ModelResult {
	for i := range c.Results {
		if c.Results[i].Name == name {
			return &c.Results[i]
		}
	}
	return nil
}

// The smallest split a comparison means anything on.
const (
	minTrainRows = 10
	minTestRows  = 5
)

// Compare trains gradient-boosted trees, logistic regression and a random
// forest on the same stratified training split and scores them and the
// majority-class baseline on the held-out students.
func Compare(ds *Dataset, cfg TrainConfig) (*Comparison, error) {
	cfg.defaults()
	train, test := StratifiedSplit(ds.Y, cfg.Holdout, cfg.Seed)
	if len(train) < minTrainRows || len(test) < minTestRows {
		return nil, fmt.Errorf("%w: %d rows give %d training and %d held-out students; a comparison needs at least %d and %d",
			ErrTooFewRows, len(ds.Y), len(train), len(test), minTrainRows, minTestRows)
	}
	xtr, ytr, med := ds.subset(train)
	xte := make([][]float64, len(test))
	truth := make([]int, len(test))
	for k, i := range test {
		xte[k] = slices.Clone(ds.X[i])
		truth[k] = ds.Y[i]
	}
	Impute(xte, med)
	K := len(ds.Classes)
	cmp := &Comparison{Classes: ds.Classes, Train: train, Test: test, Truth: truth}
	type prober interface{ Proba([]float64) []float64 }
	run := func(name string, fit func() (prober, error)) error {
		start := time.Now()
		m, err := fit()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		secs := time.Since(start).Seconds()
		pred := make([]int, len(xte))
		for k, r := range xte {
			pred[k] = argmax(m.Proba(r))
		}
		res := ModelResult{Name: name, Metrics: Evaluate(ds.Classes, truth, pred), Seconds: secs, Pred: pred}
		cfg.Logger.Info("model compared", "model", name, "accuracy", res.Metrics.Accuracy, "macro_f1", res.Metrics.MacroF1, "train_seconds", secs)
		cmp.Results = append(cmp.Results, res)
		return nil
	}
	if err := run(NameGBT, func() (prober, error) { return TrainGBT(xtr, ytr, K, cfg.GBT) }); err != nil {
		return nil, err
	}
	if err := run(NameLogistic, func() (prober, error) { return TrainLogistic(xtr, ytr, K, cfg.Logistic) }); err != nil {
		return nil, err
	}
	if err := run(NameForest, func() (prober, error) { return TrainForest(xtr, ytr, K, cfg.Forest) }); err != nil {
		return nil, err
	}
	maj := majorityClass(ytr, K)
	pred := make([]int, len(test))
	for k := range pred {
		pred[k] = maj
	}
	cmp.Results = append(cmp.Results, ModelResult{Name: NameMajority, Metrics: Evaluate(ds.Classes, truth, pred), Pred: pred})
	return cmp, nil
}

// Fit trains the gradient-boosted model on every row of ds, imputing
// missing cells with the column medians that it stores in the model.
func Fit(ds *Dataset, cfg TrainConfig) (*Model, error) {
	cfg.defaults()
	idx := make([]int, len(ds.Y))
	for i := range idx {
		idx[i] = i
	}
	x, y, med := ds.subset(idx)
	g, err := TrainGBT(x, y, len(ds.Classes), cfg.GBT)
	if err != nil {
		return nil, err
	}
	return &Model{
		Format: ModelFormat, Version: ModelVersion, Kind: ModelKindGBT,
		Label: ds.Label, Classes: ds.Classes, Features: ds.Features, Impute: med,
		Seed: cfg.Seed, Rows: len(y), GBT: g,
	}, nil
}
