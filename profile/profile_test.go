package profile

import (
	"bytes"
	"math"
	"regexp"
	"strings"
	"testing"
)

func TestRunNamesTheStudysThreeProfiles(t *testing.T) {
	c := testCohort()
	res, err := Run(c.Table, Options{Seed: 4, Label: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if res.K != 3 || len(res.Elbow) != 8 || res.Prediction != nil {
		t.Fatalf("k = %d, elbow %v, prediction %v", res.K, res.Elbow, res.Prediction != nil)
	}
	if ari := AdjustedRandIndex(plantedLabels(c), res.Assign); ari < 0.8 {
		t.Fatalf("ARI %.3f", ari)
	}
	// Each cluster must be named after the planted profile most of its
	// members came from.
	for ci, p := range res.Profiles {
		votes := map[string]int{}
		for i, a := range res.Assign {
			if a == ci {
				votes[c.Planted[i]]++
			}
		}
		best := ""
		for name, n := range votes {
			if best == "" || n > votes[best] {
				best = name
			}
		}
		if p.Name != best {
			t.Errorf("cluster %d named %s, but most members are %s (%v)", ci, p.Name, best, votes)
		}
	}
	byName := map[string]Profile{}
	for _, p := range res.Profiles {
		byName[p.Name] = p
	}
	m, b, d := byName[ProfileMarginal], byName[ProfileBalanced], byName[ProfileDiligent]
	if !(m.Groups[GroupOutcome] < b.Groups[GroupOutcome] && b.Groups[GroupEmotion] < d.Groups[GroupEmotion]) {
		t.Errorf("group means do not keep the study's order: marginal %v, balanced %v, diligent %v", m.Groups, b.Groups, d.Groups)
	}
	if m.Share < 0.07 || m.Share > 0.13 || d.Share < 0.17 || d.Share > 0.27 {
		t.Errorf("shares marginal %.3f diligent %.3f", m.Share, d.Share)
	}
	as := res.Assignments()
	if len(as) != c.Table.Len() || as[0].ID != c.Table.IDs[0] || as[0].Profile == "" {
		t.Fatalf("assignments %v…", as[:1])
	}
}

func TestRunIsReproducibleForASeed(t *testing.T) {
	c, _ := GenerateCohort(CohortConfig{Students: 800, Seed: 21})
	a, err := Run(c.Table, Options{Seed: 8})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Run(c.Table, Options{Seed: 8})
	for i := range a.Assign {
		if a.Assign[i] != b.Assign[i] || a.Coords[i] != b.Coords[i] {
			t.Fatalf("row %d differs between runs", i)
		}
	}
	for k := range a.Prediction.Results {
		if a.Prediction.Results[k].Metrics.Accuracy != b.Prediction.Results[k].Metrics.Accuracy {
			t.Fatalf("%s accuracy differs between runs", a.Prediction.Results[k].Name)
		}
	}
}

func TestRunImputesMissingCellsAndFixedK(t *testing.T) {
	c, _ := GenerateCohort(CohortConfig{Students: 300, Seed: 2, Windows: 1})
	c.Table.Rows[0][0] = math.NaN()
	c.Table.Rows[5][3] = math.NaN()
	res, err := Run(c.Table, Options{Seed: 1, K: 4, Label: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Imputed != 2 || res.K != 4 || res.Elbow != nil || len(res.Profiles) != 4 {
		t.Fatalf("imputed %d, k %d, elbow %v, %d profiles", res.Imputed, res.K, res.Elbow, len(res.Profiles))
	}
	names := map[string]bool{}
	for _, p := range res.Profiles {
		if names[p.Name] {
			t.Fatalf("two profiles named %q", p.Name)
		}
		names[p.Name] = true
	}
}

func TestReportIsSelfContainedWithChartsAndFigures(t *testing.T) {
	c, _ := GenerateCohort(CohortConfig{Students: 1200, Seed: 5})
	res, err := Run(c.Table, Options{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteReport(&buf, res, ReportInfo{Source: "cohort<1>.csv", Seed: 5}); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		"<svg", "PC1 (", "elbow at k = 3", "Radar charts", "marginal", "balanced", "diligent",
		NameGBT, NameLogistic, NameForest, NameMajority, "Accuracy per profile", "Confusion matrix", "cohort&lt;1&gt;.csv",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if n := strings.Count(page, "<circle"); n < 1200 {
		t.Errorf("%d points in the scatter and elbow, want every student", n)
	}
	if n := strings.Count(page, "aria-label=\"radar"); n != 3 {
		t.Errorf("%d radar charts, want one per profile", n)
	}
	if regexp.MustCompile(`(?i)<(script|link|img)\b|https?://[^"]*\.(js|css)`).MatchString(strings.ReplaceAll(page, "http://www.w3.org/2000/svg", "")) {
		t.Error("report loads or runs something from outside")
	}
}

func TestRunOnATinyTableSkipsPredictionButProfiles(t *testing.T) {
	in := "id,attendance,video_views,final_score\na,1,5,50\nb,9,40,95\nc,8,38,91\n"
	tb, err := ReadCSV(strings.NewReader(in), CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(tb, Options{Seed: 1, MaxK: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Prediction != nil || len(res.Assign) != 3 || res.K < 1 {
		t.Fatalf("prediction %v, assign %v, k %d", res.Prediction, res.Assign, res.K)
	}
	var buf bytes.Buffer
	if err := WriteReport(&buf, res, ReportInfo{}); err != nil {
		t.Fatal(err)
	}
}
