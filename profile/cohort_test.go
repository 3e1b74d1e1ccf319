package profile

import (
	"sync"
	"testing"
)

// testCohort is shared by the tests that need a realistic cohort.
var testCohort = sync.OnceValue(func() *Cohort {
	c, err := GenerateCohort(CohortConfig{Students: 4000, Seed: 7})
	if err != nil {
		panic(err)
	}
	return c
})

func plantedLabels(c *Cohort) []int {
	idx := map[string]int{ProfileMarginal: 0, ProfileBalanced: 1, ProfileDiligent: 2}
	out := make([]int, len(c.Planted))
	for i, p := range c.Planted {
		out[i] = idx[p]
	}
	return out
}

func TestCohortFollowsTheStudysProfileMix(t *testing.T) {
	c := testCohort()
	counts := map[string]int{}
	for _, p := range c.Planted {
		counts[p]++
	}
	n := float64(len(c.Planted))
	for name, want := range map[string]float64{ProfileMarginal: 0.10, ProfileBalanced: 0.68, ProfileDiligent: 0.22} {
		if got := float64(counts[name]) / n; got < want-0.03 || got > want+0.03 {
			t.Errorf("%s share %.3f, want %.2f ± 0.03", name, got, want)
		}
	}
}

func TestCohortGradesFollowProfiles(t *testing.T) {
	c := testCohort()
	j := c.Table.Column(ColFinalScore)
	mean := map[string]float64{}
	n := map[string]int{}
	for i, p := range c.Planted {
		mean[p] += c.Table.Rows[i][j]
		n[p]++
		if GradeOf(c.Table.Rows[i][j]) != c.Grades[i] {
			t.Fatalf("row %d: grade %s does not match score %v", i, c.Grades[i], c.Table.Rows[i][j])
		}
	}
	for p := range mean {
		mean[p] /= float64(n[p])
	}
	if !(mean[ProfileMarginal]+15 < mean[ProfileBalanced] && mean[ProfileBalanced]+3 < mean[ProfileDiligent]) {
		t.Fatalf("mean final score by profile %v: want marginal ≪ balanced < diligent", mean)
	}
}

func TestCohortIsReproducibleForASeed(t *testing.T) {
	a, _ := GenerateCohort(CohortConfig{Students: 300, Seed: 11})
	b, _ := GenerateCohort(CohortConfig{Students: 300, Seed: 11})
	c, _ := GenerateCohort(CohortConfig{Students: 300, Seed: 12})
	same, differs := true, false
	for i := range a.Table.Rows {
		for j := range a.Table.Rows[i] {
			same = same && a.Table.Rows[i][j] == b.Table.Rows[i][j]
			differs = differs || a.Table.Rows[i][j] != c.Table.Rows[i][j]
		}
	}
	if !same || !differs {
		t.Fatalf("same seed identical: %v; other seed differs: %v", same, differs)
	}
}

func TestCohortRejectsBadConfig(t *testing.T) {
	for _, cfg := range []CohortConfig{{Students: 0}, {Students: 10, Windows: MaxWindows + 1}, {Students: 10, Mix: [3]float64{-1, 1, 1}}} {
		if _, err := GenerateCohort(cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}
