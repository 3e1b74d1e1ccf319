package profile_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/profile"
	"github.com/classpulse/classpulse/profile/learner"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

func TestLearnersCarryProfilePredictionAndModelVersion(t *testing.T) {
	c, err := profile.GenerateCohort(profile.CohortConfig{Students: 600, Windows: 4, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := profile.NewDataset(c.Table, nil, profile.ColFinalScore)
	if err != nil {
		t.Fatal(err)
	}
	m, err := profile.Fit(ds, profile.TrainConfig{Seed: 5, GBT: profile.GBTConfig{Rounds: 30}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := profile.Run(c.Table, profile.Options{Seed: 5, Label: "-"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	recs, err := profile.Learners(c.Table, res, m, 5, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != c.Table.Len() {
		t.Fatalf("%d records for %d rows", len(recs), c.Table.Len())
	}
	grades := map[string]int{}
	for i, r := range recs {
		if r.Student != c.Table.IDs[i] || r.Profile != res.Profiles[res.Assign[i]].Name || r.K != res.K || !r.At.Equal(at) {
			t.Fatalf("record %d = %+v", i, r)
		}
		if r.Model != m.ID() || len(r.Model) != len("gbt-")+12 || r.PD == nil || *r.PD < 0 || *r.PD > 1 {
			t.Fatalf("record %d prediction = %+v (model %s)", i, r.Record, m.ID())
		}
		x, _ := c.Table.Select(m.Features)
		want, probs := m.Predict(x[i])
		if r.Grade != want || math.Abs(*r.PD-probs["D"]) > 1e-4 {
			t.Fatalf("record %d: grade %s p_d %v, model says %s %v", i, r.Grade, *r.PD, want, probs["D"])
		}
		grades[r.Grade]++
	}
	if grades["D"] == 0 || grades["A"]+grades["B"]+grades["C"] == 0 {
		t.Fatalf("predicted grades %v: want D and others", grades)
	}
	without, err := profile.Learners(c.Table, res, nil, 5, at)
	if err != nil {
		t.Fatal(err)
	}
	if w := without[0]; w.Grade != "" || w.PD != nil || w.Model != "" || w.Profile == "" {
		t.Fatalf("without a model: %+v", w.Record)
	}
}

func TestWriteLearnersIsIdempotentAndLeavesRosterFacts(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	if err := rdb.HSet(ctx, state.ProfileKey("s1"), "class", "c1", "minor", "1").Err(); err != nil {
		t.Fatal(err)
	}
	pd := func(v float64) *float64 { return &v }
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	recs := []profile.StudentLearner{
		{Student: "s1", Record: learner.Record{Course: "math", Profile: "marginal", Cluster: 0, K: 3, Grade: "D", PD: pd(0.71), Model: "gbt-abc", Seed: 1, At: t0}},
		{Student: "s1", Record: learner.Record{Course: "law", Profile: "balanced", Cluster: 1, K: 3, Seed: 1, At: t0}},
		{Student: "s2", Record: learner.Record{Profile: "diligent", Cluster: 2, K: 3, Grade: "A", PD: pd(0.01), Model: "gbt-abc", Seed: 1, At: t0}},
	}
	later := func(rs []profile.StudentLearner, d time.Duration) []profile.StudentLearner {
		out := append([]profile.StudentLearner(nil), rs...)
		for i := range out {
			out[i].At = out[i].At.Add(d)
		}
		return out
	}
	steps := []struct {
		name               string
		recs               []profile.StudentLearner
		written, unchanged int
		wantAt             time.Time
	}{
		{"first run writes every record", recs, 3, 0, t0},
		{"the same values an hour later change nothing", later(recs, time.Hour), 0, 3, t0},
		{"a changed prediction is rewritten with its new time", func() []profile.StudentLearner {
			rs := later(recs, 2*time.Hour)
			rs[0].PD = pd(0.42)
			rs[0].Grade = "C"
			return rs
		}(), 1, 2, t0.Add(2 * time.Hour)},
	}
	for _, st := range steps {
		before := rdb.HGetAll(ctx, state.ProfileKey("s2")).Val()
		wr, err := profile.WriteLearners(ctx, rdb, st.recs)
		if err != nil {
			t.Fatal(err)
		}
		if wr.Written != st.written || wr.Unchanged != st.unchanged {
			t.Fatalf("%s: %+v, want %d written %d unchanged", st.name, wr, st.written, st.unchanged)
		}
		if st.written == 0 {
			if after := rdb.HGetAll(ctx, state.ProfileKey("s2")).Val(); after[learner.Field("")] != before[learner.Field("")] {
				t.Fatalf("%s: stored record changed from %s to %s", st.name, before, after)
			}
		}
		got := learner.Parse(rdb.HGetAll(ctx, state.ProfileKey("s1")).Val())
		if len(got) != 2 || got[0].Course != "law" || got[1].Course != "math" || !got[1].At.Equal(st.wantAt) {
			t.Fatalf("%s: s1 learners %+v", st.name, got)
		}
	}
	roster := rdb.HGetAll(ctx, state.ProfileKey("s1")).Val()
	if roster["class"] != "c1" || roster["minor"] != "1" {
		t.Fatalf("roster facts changed: %v", roster)
	}
}

// TestWrittenBackPredictionReachesThePredictedRiskRule follows a record
// from WriteLearners to a finding along the processor's own path: the
// state store's result of the student's next click carries the roster
// hash, PredictionsFromProfile turns it into Snapshot.Predictions, and the
// enabled rule fires.
func TestWrittenBackPredictionReachesThePredictedRiskRule(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	now := time.Now().UTC()
	pd := 0.86
	rec := profile.StudentLearner{Student: "s1", Record: learner.Record{Course: "calculus", Profile: "marginal", K: 3, Grade: "D", PD: &pd, Model: "gbt-0123456789ab", At: now.Add(-time.Hour)}}
	if _, err := profile.WriteLearners(ctx, rdb, []profile.StudentLearner{rec}); err != nil {
		t.Fatal(err)
	}
	store, err := state.New(rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	yaml := strings.Replace(string(rules.DefaultPolicyYAML()), "predicted_risk:\n  enabled: false", "predicted_risk:\n  enabled: true", 1)
	policy, err := rules.LoadPolicy([]byte(yaml), "on.yaml")
	if err != nil {
		t.Fatal(err)
	}
	click := &stream.Click{Header: stream.NewHeader("s1", now), Course: "calculus", Kind: stream.KindQuiz}
	res, err := store.Apply(ctx, policy, []state.Op{{Event: click, Topic: stream.TopicClicks, Offset: 1}})
	if err != nil || len(res) != 1 || res[0].Academic == nil {
		t.Fatalf("apply: %+v %v", res, err)
	}
	snap := &rules.Snapshot{Student: "s1", Now: now, Predictions: rules.PredictionsFromProfile(res[0].Academic.Profile)}
	var got []rules.Finding
	for _, f := range rules.Evaluate(policy, snap) {
		if f.Rule == rules.RulePredictedRisk {
			got = append(got, f)
		}
	}
	if len(got) != 1 || got[0].Level != stream.LevelRed || got[0].Course != "calculus" || got[0].Evidence["p_d"] != 0.86 {
		t.Fatalf("findings %+v, want one red predicted_risk for calculus", got)
	}
}
