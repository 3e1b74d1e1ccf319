package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
)

// testModel is a small model trained once on the shared cohort.
var testModel = sync.OnceValues(func() (*Model, error) {
	ds, err := NewDataset(testCohort().Table, nil, ColFinalScore)
	if err != nil {
		return nil, err
	}
	return Fit(ds, TrainConfig{Seed: 1, GBT: GBTConfig{Rounds: 30}})
})

func TestModelFileRoundTripsPredictions(t *testing.T) {
	m, err := testModel()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := LoadModel(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	x, _ := testCohort().Table.Select(m.Features)
	for _, r := range x[:300] {
		c1, p1 := m.Predict(r)
		c2, p2 := back.Predict(r)
		if c1 != c2 || p1["D"] != p2["D"] {
			t.Fatalf("prediction changed by save and load: %s %v vs %s %v", c1, p1, c2, p2)
		}
		sum := 0.0
		for _, v := range p1 {
			sum += v
		}
		if math.Abs(sum-1) > 1e-9 || len(p1) != 4 {
			t.Fatalf("probabilities %v", p1)
		}
	}
}

func TestModelImputesMissingFeaturesWithTrainingMedians(t *testing.T) {
	m, err := testModel()
	if err != nil {
		t.Fatal(err)
	}
	nan := make([]float64, len(m.Features))
	for j := range nan {
		nan[j] = math.NaN()
	}
	c1, p1 := m.Predict(nan)
	c2, p2 := m.Predict(m.Impute)
	if c1 == "" || c1 != c2 || p1[c1] != p2[c2] {
		t.Fatalf("all-missing row predicts %s %v, the medians %s %v", c1, p1, c2, p2)
	}
	if c, p := m.Predict([]float64{1, 2}); c != "" || p != nil {
		t.Fatalf("wrong feature count predicted %s %v", c, p)
	}
}

func TestModelPredictsLowGradeForWeakStudents(t *testing.T) {
	m, err := testModel()
	if err != nil {
		t.Fatal(err)
	}
	c := testCohort()
	x, _ := c.Table.Select(m.Features)
	var pdMarginal, pdDiligent float64
	var nm, nd int
	for i, p := range c.Planted {
		_, probs := m.Predict(x[i])
		switch p {
		case ProfileMarginal:
			pdMarginal += probs[GradeD]
			nm++
		case ProfileDiligent:
			pdDiligent += probs[GradeD]
			nd++
		}
	}
	pdMarginal /= float64(nm)
	pdDiligent /= float64(nd)
	if pdMarginal < 0.5 || pdDiligent > 0.05 {
		t.Fatalf("mean P(D): marginal %.3f, diligent %.3f", pdMarginal, pdDiligent)
	}
}

func TestLoadModelRejectsBrokenFiles(t *testing.T) {
	m, err := testModel()
	if err != nil {
		t.Fatal(err)
	}
	good, _ := json.Marshal(m)
	edit := func(f func(m map[string]any)) string {
		var v map[string]any
		if err := json.Unmarshal(good, &v); err != nil {
			t.Fatal(err)
		}
		f(v)
		b, _ := json.Marshal(v)
		return string(b)
	}
	firstTree := func(v map[string]any) []any {
		return v["gbt"].(map[string]any)["trees"].([]any)[0].([]any)[0].([]any)
	}
	tests := []struct{ name, in, want string }{
		{"not JSON", "{", "not JSON"},
		{"wrong format", edit(func(v map[string]any) { v["format"] = "other" }), "model format"},
		{"future version", edit(func(v map[string]any) { v["version"] = 2 }), "version 2 is not supported"},
		{"one class", edit(func(v map[string]any) { v["classes"] = []string{"A"} }), "classes"},
		{"duplicate feature", edit(func(v map[string]any) {
			f := v["features"].([]any)
			f[1] = f[0]
		}), "appears twice"},
		{"impute length", edit(func(v map[string]any) { v["impute"] = []float64{1} }), "impute values"},
		{"no gbt", edit(func(v map[string]any) { delete(v, "gbt") }), "no gbt section"},
		{"link backwards", edit(func(v map[string]any) { firstTree(v)[0].(map[string]any)["l"] = 0 }), "links to"},
		{"feature out of range", edit(func(v map[string]any) { firstTree(v)[0].(map[string]any)["f"] = 9999 }), "splits feature"},
		{"leaf without value", edit(func(v map[string]any) {
			tr := firstTree(v)
			delete(tr[len(tr)-1].(map[string]any), "v")
		}), "leaf"},
		{"round missing a class", edit(func(v map[string]any) {
			r := v["gbt"].(map[string]any)["trees"].([]any)
			r[0] = r[0].([]any)[:2]
		}), "want one per class"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadModel(strings.NewReader(tc.in))
			if err == nil || !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrBadInput mentioning %q", err, tc.want)
			}
		})
	}
}

func FuzzLoadModel(f *testing.F) {
	small := &Model{Format: ModelFormat, Version: ModelVersion, Kind: ModelKindGBT, Classes: []string{"A", "B"},
		Features: []string{"x", "y"}, Impute: []float64{0, 1},
		GBT: &GBT{Classes: 2, Base: []float64{0, 0}, Trees: [][]Tree{{
			{{Feature: 0, Threshold: 0.5, Left: 1, Right: 2}, {Feature: -1, Value: []float64{-1}}, {Feature: -1, Value: []float64{1}}},
			{{Feature: -1, Value: []float64{0.2}}},
		}}}}
	var buf bytes.Buffer
	if err := small.Save(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.String())
	f.Add(`{"format":"classpulse.profile.model","version":1}`)
	f.Add(`{"format":"classpulse.profile.model","version":1,"kind":"gbt","classes":["a","b"],"features":["x"],"impute":[0],"gbt":{"classes":2,"base":[0,0],"trees":[[[{"f":0,"t":1,"l":0,"r":0}],[{"f":-1,"v":[1]}]]]}}`)
	f.Fuzz(func(t *testing.T, in string) {
		m, err := LoadModel(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrBadInput) {
				t.Fatalf("error %v does not wrap ErrBadInput", err)
			}
			return
		}
		x := make([]float64, len(m.Features))
		for _, v := range []float64{math.NaN(), -1e300, 0, 1e300} {
			for j := range x {
				x[j] = v
			}
			if c, p := m.Predict(x); c == "" || len(p) != len(m.Classes) {
				t.Fatalf("loaded model predicts %q %v", c, p)
			}
		}
	})
}

func FuzzReadCSV(f *testing.F) {
	f.Add("id,quiz_score,final_score\ns1,12,80\ns2,,55\n")
	f.Add("id,class,attendance\ns1,c1,NA\n")
	f.Add("id,quiz_score\n\"s1\",\"1\"2\n")
	f.Add("\uFEFFid,x\ns,1e308\ns,-0\n")
	f.Fuzz(func(t *testing.T, in string) {
		tb, err := ReadCSV(strings.NewReader(in), CSVOptions{Label: "final_score", MaxRows: 1000})
		if err != nil {
			return
		}
		if len(tb.IDs) != tb.Len() || len(tb.Labels) != tb.Len() {
			t.Fatalf("%d ids, %d labels for %d rows", len(tb.IDs), len(tb.Labels), tb.Len())
		}
		for _, r := range tb.Rows {
			if len(r) != len(tb.Columns) {
				t.Fatalf("row of %d cells for %d columns", len(r), len(tb.Columns))
			}
			for _, v := range r {
				if math.IsInf(v, 0) {
					t.Fatal("an infinite value got through")
				}
			}
		}
	})
}
