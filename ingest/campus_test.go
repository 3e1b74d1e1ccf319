package ingest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/rules"
)

// TestImportedSignalsFeedTheCampusRules imports a signals file as a school
// would and evaluates the (enabled) behaviour and participation rules over
// what ReadCampus makes of it.
func TestImportedSignalsFeedTheCampusRules(t *testing.T) {
	ctx := context.Background()
	rdb := redisClient(t)
	y := string(rules.DefaultPolicyYAML())
	y = strings.Replace(y, "behaviour:\n  enabled: false", "behaviour:\n  enabled: true", 1)
	y = strings.Replace(y, "participation:\n  enabled: false", "participation:\n  enabled: true", 1)
	p, err := rules.LoadPolicy([]byte(y), "on.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sh := p.Location()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, sh)
	var b strings.Builder
	b.WriteString("student,kind,ts,value,detail\n")
	for d := 1; d <= 20; d++ {
		day := now.AddDate(0, 0, -d).Format("2006-01-02")
		// s1 misses most calculus and law sessions and spends on 3 days
		// only; s2 attends and spends every day and joins a club.
		fmt.Fprintf(&b, "s1,attendance,%s 08:00,%d,calculus\n", day, map[bool]int{true: 1}[d%4 == 0])
		fmt.Fprintf(&b, "s1,attendance,%s 10:00,%d,law\n", day, map[bool]int{true: 1}[d%5 == 0])
		fmt.Fprintf(&b, "s1,attendance,%s 14:00,1,english\n", day)
		fmt.Fprintf(&b, "s2,attendance,%s 08:00,1,calculus\n", day)
		fmt.Fprintf(&b, "s2,card,%s 12:00,15,\n", day)
		if d <= 3 {
			fmt.Fprintf(&b, "s1,card,%s 12:00,40,\n", day)
		}
	}
	b.WriteString("s2,club,2026-11-10 19:00,,chess\n")
	b.WriteString("s1,club,2026-09-01 19:00,,chess\n") // before the 6-week window
	im, err := NewImporter(ImportConfig{Kind: KindSignals, Location: sh, DryRun: true}, rdb, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	plan, rep, err := im.Check(table(t, "signals.csv", b.String()))
	if err != nil || len(rep.Errors) > 0 {
		t.Fatalf("%v %+v", err, rep.Errors)
	}
	if err := im.writeRedis(ctx, plan, rep); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		student string
		want    []string
	}{
		{"s1", []string{rules.RuleBehaviour, rules.RuleParticipation}},
		{"s2", nil},
		{"nobody", []string{rules.RuleParticipation}},
	}
	for _, tc := range tests {
		t.Run(tc.student, func(t *testing.T) {
			c, err := ReadCampus(ctx, rdb, tc.student, p, now)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range rules.EvaluateFamilies(p, &rules.Snapshot{Student: tc.student, Now: now, Campus: c}, rules.FamilyAcademic) {
				if f.Rule == rules.RuleBehaviour || f.Rule == rules.RuleParticipation {
					got = append(got, f.Rule)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("fired %v, want %v (campus %+v)", got, tc.want, c)
			}
			if tc.student == "s1" && (c.Attendance["english"].Rate != 1 || c.Attendance["calculus"].Sessions != 20 || c.CardDays != 3) {
				t.Errorf("s1 campus %+v", c)
			}
		})
	}

	// The processor reads every student of a batch in one round trip:
	// the same summaries, in order.
	reads := []CampusRead{{"s2", now}, {"s1", now}, {"nobody", now}, {"s1", now.AddDate(0, 0, -10)}}
	many, err := ReadCampusMany(ctx, rdb, reads, p, func(student string, err error) { t.Errorf("%s: %v", student, err) })
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range reads {
		one, err := ReadCampus(ctx, rdb, r.Student, p, r.Now)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%+v", one) != fmt.Sprintf("%+v", many[i]) {
			t.Errorf("read %d (%s at %s): together %+v, alone %+v", i, r.Student, r.Now, many[i], one)
		}
	}

	// An entry written by something other than the importer is left out
	// and reported; ReadCampus, which the follow-up uses, refuses it.
	before, err := ReadCampus(ctx, rdb, "s1", p, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.ZAdd(ctx, SignalsKey("s1"), redis.Z{Score: float64(now.Add(-time.Hour).UnixMilli()), Member: "{not json"}).Err(); err != nil {
		t.Fatal(err)
	}
	var skipped []string
	got, err := ReadCampusMany(ctx, rdb, []CampusRead{{"s1", now}, {"s2", now}}, p, func(student string, err error) { skipped = append(skipped, student) })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(skipped, ",") != "s1" || fmt.Sprintf("%+v", got[0]) != fmt.Sprintf("%+v", before) {
		t.Errorf("with an unreadable entry: skipped %v, s1 %+v (want %+v)", skipped, got[0], before)
	}
	if _, err := ReadCampus(ctx, rdb, "s1", p, now); err == nil || !strings.Contains(err.Error(), "unreadable entry") {
		t.Errorf("ReadCampus with an unreadable entry: %v", err)
	}
}
