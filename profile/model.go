package profile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

// Model file identity. Version changes whenever the JSON shape changes; a
// loader refuses versions it does not know.
const (
	ModelFormat  = "classpulse.profile.model"
	ModelVersion = 1
	ModelKindGBT = "gbt"
)

// Limits a model file must respect; they keep a hostile file from costing
// unbounded memory or time.
const (
	maxModelBytes    = 256 << 20
	maxModelClasses  = 64
	maxModelFeatures = maxColumns
	maxModelRounds   = 5000
	maxTreeNodes     = 1 << 16
)

// Model is a trained grade predictor as saved in a model file: the feature
// columns it reads, the value imputed for each when missing, the classes,
// and the boosted trees.
type Model struct {
	Format   string    `json:"format"`
	Version  int       `json:"version"`
	Kind     string    `json:"kind"`
	Label    string    `json:"label"`    // the label column it was trained on
	Classes  []string  `json:"classes"`  // e.g. A, B, C, D
	Features []string  `json:"features"` // column order of Predict's input
	Impute   []float64 `json:"impute"`   // training median of each feature
	Seed     uint64    `json:"seed"`
	Rows     int       `json:"rows"` // training rows
	GBT      *GBT      `json:"gbt"`

	id string // ID, once computed
}

// ID names the model by its content: "gbt-" and the first 12 hex digits of
// the SHA-256 of the file Save writes. The same training input and seed
// give the same ID; it is the model version a written-back prediction
// carries.
func (m *Model) ID() string {
	if m.id != "" {
		return m.id
	}
	h := sha256.New()
	if err := m.Save(h); err != nil {
		return m.Kind + "-unsaved"
	}
	m.id = m.Kind + "-" + hex.EncodeToString(h.Sum(nil))[:12]
	return m.id
}

// Predict returns the most probable class of one student and the
// probability of every class. features are in m.Features order; a NaN is
// imputed with the training median. It returns "" and nil when the length
// does not match m.Features.
func (m *Model) Predict(features []float64) (class string, probs map[string]float64) {
	p, err := m.Proba(features)
	if err != nil {
		return "", nil
	}
	probs = make(map[string]float64, len(p))
	for c, v := range p {
		probs[m.Classes[c]] = v
	}
	return m.Classes[argmax(p)], probs
}

// Proba returns the class probabilities in m.Classes order.
func (m *Model) Proba(features []float64) ([]float64, error) {
	if len(features) != len(m.Features) {
		return nil, badInput("model wants %d features, got %d", len(m.Features), len(features))
	}
	x := make([]float64, len(features))
	for j, v := range features {
		if math.IsNaN(v) {
			v = m.Impute[j]
		}
		x[j] = v
	}
	return m.GBT.Proba(x), nil
}

// Save writes m as indented JSON.
func (m *Model) Save(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(m)
}

// LoadModel reads and checks a model file. Everything a file could get
// wrong (format, version, sizes, tree links, non-finite numbers) is an
// error wrapping ErrBadInput; a loaded model never panics on Predict.
func LoadModel(r io.Reader) (*Model, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxModelBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	if len(data) > maxModelBytes {
		return nil, badInput("model file larger than %d bytes", maxModelBytes)
	}
	var m Model
	if err := json.Unmarshal(data, &m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, badInput("model file is not JSON (offset %d): %v", se.Offset, err)
		}
		return nil, badInput("model file: %v", err)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Model) validate() error {
	if m.Format != ModelFormat {
		return badInput("model format %q, want %q", m.Format, ModelFormat)
	}
	if m.Version != ModelVersion {
		return badInput("model version %d is not supported (this build reads version %d)", m.Version, ModelVersion)
	}
	if m.Kind != ModelKindGBT {
		return badInput("model kind %q, want %q", m.Kind, ModelKindGBT)
	}
	if err := uniqueNames("classes", m.Classes, 2, maxModelClasses); err != nil {
		return err
	}
	if err := uniqueNames("features", m.Features, 1, maxModelFeatures); err != nil {
		return err
	}
	if len(m.Impute) != len(m.Features) {
		return badInput("model has %d impute values for %d features", len(m.Impute), len(m.Features))
	}
	for j, v := range m.Impute {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return badInput("model impute value of %q is not finite", m.Features[j])
		}
	}
	g := m.GBT
	if g == nil {
		return badInput("model has no gbt section")
	}
	K := len(m.Classes)
	if g.Classes != K || len(g.Base) != K {
		return badInput("gbt section has %d classes and %d base values, the model %d classes", g.Classes, len(g.Base), K)
	}
	for _, v := range g.Base {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return badInput("gbt base value is not finite")
		}
	}
	if len(g.Trees) > maxModelRounds {
		return badInput("gbt has %d rounds, at most %d", len(g.Trees), maxModelRounds)
	}
	for r, round := range g.Trees {
		if len(round) != K {
			return badInput("gbt round %d has %d trees, want one per class (%d)", r, len(round), K)
		}
		for c, t := range round {
			if err := t.validate(len(m.Features), 1); err != nil {
				return badInput("gbt round %d class %d: %v", r, c, err)
			}
		}
	}
	return nil
}

// validate checks that every inner node splits a known feature at a finite
// threshold and links forward to two distinct nodes, and that every leaf
// holds nOut finite values. Forward links make every walk end.
func (t Tree) validate(features, nOut int) error {
	if len(t) == 0 || len(t) > maxTreeNodes {
		return fmt.Errorf("tree has %d nodes, want 1..%d", len(t), maxTreeNodes)
	}
	for i, n := range t {
		if n.Feature < 0 {
			if n.Feature != -1 {
				return fmt.Errorf("node %d: feature %d", i, n.Feature)
			}
			if len(n.Value) != nOut {
				return fmt.Errorf("leaf %d has %d values, want %d", i, len(n.Value), nOut)
			}
			for _, v := range n.Value {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("leaf %d value is not finite", i)
				}
			}
			continue
		}
		if n.Feature >= features {
			return fmt.Errorf("node %d splits feature %d of %d", i, n.Feature, features)
		}
		if math.IsNaN(n.Threshold) {
			return fmt.Errorf("node %d threshold is not a number", i)
		}
		if n.Left <= i || n.Right <= i || n.Left >= len(t) || n.Right >= len(t) || n.Left == n.Right {
			return fmt.Errorf("node %d links to %d and %d, want two distinct later nodes", i, n.Left, n.Right)
		}
	}
	return nil
}

func uniqueNames(what string, names []string, lo, hi int) error {
	if len(names) < lo || len(names) > hi {
		return badInput("model has %d %s, want %d..%d", len(names), what, lo, hi)
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if n == "" || len(n) > 256 {
			return badInput("model %s: a name is empty or longer than 256 bytes", what)
		}
		if seen[n] {
			return badInput("model %s: %q appears twice", what, n)
		}
		seen[n] = true
	}
	return nil
}
