package replay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// go-redis' pool reaper outlives a closed client briefly.
		goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

// t0 is 09:00 in Shanghai on a Monday of study period 2026-autumn-3 of the
// default policy's calendar.
var t0 = time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)

type class struct {
	lines []string
}

func (c *class) add(t *testing.T, wrapped bool, e stream.Event) {
	t.Helper()
	b, err := stream.Encode(e)
	if err != nil {
		t.Fatalf("encode %T: %v", e, err)
	}
	if wrapped {
		b = []byte(fmt.Sprintf(`{"topic":%q,"event":%s}`, e.Topic(), b))
	}
	c.lines = append(c.lines, string(b))
}

// generatedClass is four students in one live session of three minutes
// (s1 and s3 attentive, s2 and s4 absent from the camera), their study
// time this term, and grades: s1 fails two courses, s2 one course and a
// public elective, s3 four courses, one a second (so its grade warning is
// raised yellow, then escalated to red). Scores are bare lines, clicks and
// grades wrapped, and the lines are written student by student, not in
// time order, so the replay has to sort them.
func generatedClass(t *testing.T) []string {
	c := &class{}
	for _, st := range []string{"s1", "s2", "s3", "s4"} {
		present := st == "s1" || st == "s3"
		for sec := 0; sec < 180; sec++ {
			sc := &stream.Score{Header: stream.NewHeader(st, t0.Add(time.Duration(sec)*time.Second)),
				Session: "S1", Course: "calculus", WindowMS: 1000, Frames: 10, Model: "test-1"}
			if present {
				sc.FaceRatio, sc.Attention = 1, 0.9
				sc.Learning = &stream.Learning{Engaged: 0.8, Confused: 0.1, Bored: 0.05, Frustrated: 0.05}
			}
			c.add(t, false, sc)
		}
		// s1 has studied 30 h of calculus and of law this term, the others
		// ten minutes each: below what period 2026-autumn-3 requires.
		hours, from := 10.0/60, t0
		if st == "s1" {
			hours, from = 30, t0.AddDate(0, 0, -10) // studied in an earlier week
		}
		for _, course := range []string{"calculus", "law"} {
			for left, i := hours*3600, 0; left > 0; i++ {
				d := min(left, 20*3600)
				c.add(t, true, &stream.Click{Header: stream.NewHeader(st, from.Add(time.Duration(i)*time.Minute)), Course: course, Kind: stream.KindStudy, DurationS: d})
				left -= d
			}
		}
	}
	fail := func(st string, at time.Duration, course string, elective bool) {
		c.add(t, true, &stream.Grade{Header: stream.NewHeader(st, t0.Add(at)), Course: course, Term: "2026-autumn", Score: 42, Elective: elective})
	}
	fail("s1", 100*time.Second, "calculus", false)
	fail("s1", 101*time.Second, "law", false)
	fail("s2", 100*time.Second, "calculus", false)
	fail("s2", 101*time.Second, "politics", true)
	for i, course := range []string{"calculus", "law", "english", "history"} {
		fail("s3", time.Duration(100+i)*time.Second, course, false)
	}
	return c.lines
}

// outcome is what a backtest is judged by: ids and times vary per run.
type outcome struct{ student, session, rule, level, state string }

func (o outcome) String() string {
	return strings.Join([]string{o.student, o.session, o.rule, o.level, o.state}, "/")
}

func runReplay(t *testing.T, lines []string, opts ...Option) ([]outcome, *Report) {
	t.Helper()
	r, err := New(Config{}, rules.NewHolder(rules.DefaultPolicy()), nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, err := r.Run(context.Background(), strings.NewReader(strings.Join(lines, "\n")+"\n"), &out)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	var got []outcome
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, MaxLineBytes)
	for sc.Scan() {
		w, err := stream.Decode(stream.TopicWarnings, sc.Bytes())
		if err != nil {
			t.Fatalf("output line %q is not a valid warning event: %v", sc.Text(), err)
		}
		ww := w.(*stream.Warning)
		got = append(got, outcome{ww.Student, ww.Session, ww.Rule, ww.Level, ww.State})
	}
	return got, rep
}

func TestReplayRaisesTheWarningsOfAGeneratedClass(t *testing.T) {
	got, rep := runReplay(t, generatedClass(t))
	if rep.Invalid != 0 || rep.Refused != 0 || rep.Events != rep.Lines {
		t.Fatalf("report %+v: every line should have been replayed", rep)
	}
	has := map[string]bool{}
	for _, o := range got {
		has[o.String()] = true
	}
	cases := []struct {
		name string
		want outcome
		yes  bool
	}{
		{"absent student gets face_absent", outcome{"s2", "S1", rules.RuleFaceAbsent, stream.LevelYellow, stream.StateRaised}, true},
		{"second absent student too", outcome{"s4", "S1", rules.RuleFaceAbsent, stream.LevelYellow, stream.StateRaised}, true},
		{"present student gets no face_absent", outcome{"s1", "S1", rules.RuleFaceAbsent, stream.LevelYellow, stream.StateRaised}, false},
		{"three minutes absent is not yet red", outcome{"s2", "S1", rules.RuleFaceAbsent, stream.LevelRed, stream.StateEscalated}, false},
		{"two failed courses: grade yellow", outcome{"s1", "", rules.RuleGrade, stream.LevelYellow, stream.StateRaised}, true},
		{"two of four failed courses: grade yellow", outcome{"s3", "", rules.RuleGrade, stream.LevelYellow, stream.StateRaised}, true},
		{"four failed courses: grade escalated to red", outcome{"s3", "", rules.RuleGrade, stream.LevelRed, stream.StateEscalated}, true},
		{"a failed public elective does not count", outcome{"s2", "", rules.RuleGrade, stream.LevelYellow, stream.StateRaised}, false},
		{"short study time in two courses: study yellow", outcome{"s3", "", rules.RuleStudy, stream.LevelYellow, stream.StateRaised}, true},
		{"enough study time: no study warning", outcome{"s1", "", rules.RuleStudy, stream.LevelYellow, stream.StateRaised}, false},
		{"half the class absent: class red", outcome{"", "S1", rules.RuleClassAbsent, stream.LevelRed, stream.StateRaised}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if has[c.want.String()] != c.yes {
				t.Errorf("%s present = %v, want %v; replay wrote:\n%s", c.want, !c.yes, c.yes, list(got))
			}
		})
	}
	total := 0
	for _, n := range rep.Warnings {
		total += n
	}
	if total != len(got) {
		t.Errorf("report counts %d warnings, output has %d", total, len(got))
	}
}

func list(os []outcome) string {
	var b strings.Builder
	for _, o := range os {
		b.WriteString("  " + o.String() + "\n")
	}
	return b.String()
}

func TestReplaySkipsInvalidLinesAndReportsTheirNumbers(t *testing.T) {
	lines := generatedClass(t)[:200]
	bad := map[int]string{ // 1-based line number → bad line
		3:   `{"topic":"classpulse.clicks.v1","event":{"v":1}}`,
		10:  `not json at all`,
		50:  `{"topic":"classpulse.warnings.v1","event":{}}`,
		120: `{"v":1,"id":"x","ts":"2026-11-23T01:00:00.000Z","student":"s9"}`,
	}
	var nums []int
	for n := range bad {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	for _, n := range nums {
		lines = append(lines[:n-1], append([]string{bad[n]}, lines[n-1:]...)...)
	}
	lines = append(lines[:20], append([]string{"", "   "}, lines[20:]...)...) // blank lines are not lines
	var reported []int
	_, rep := runReplay(t, lines, WithInvalid(func(line int, err error) {
		if !errors.Is(err, ErrLine) {
			t.Errorf("line %d: error %v does not wrap ErrLine", line, err)
		}
		reported = append(reported, line)
	}))
	want := []int{3, 10, 52, 122} // lines 50 and 120 moved down by the two blank lines
	if fmt.Sprint(reported) != fmt.Sprint(want) {
		t.Fatalf("reported lines %v, want %v", reported, want)
	}
	if rep.Invalid != 4 || rep.Events != 200 || rep.Lines != 204 {
		t.Fatalf("report %+v, want 204 lines, 200 events, 4 invalid", rep)
	}
	if !strings.Contains(rep.String(), "4 invalid lines skipped") {
		t.Errorf("summary %q does not count the skipped lines", rep.String())
	}
}

func TestReplayIsDeterministic(t *testing.T) {
	lines := generatedClass(t)
	first, _ := runReplay(t, lines)
	second, _ := runReplay(t, lines)
	if list(first) != list(second) {
		t.Fatalf("two replays of one file differ:\n%s\nvs\n%s", list(first), list(second))
	}
	// The same file on a real redis-server gives the same warnings as on
	// the embedded server: the replay is the processor's code path.
	rdb := testenv.StartRedis(t).Client(t)
	onRedis, _ := runReplay(t, lines, WithRedis(rdb))
	if list(first) != list(onRedis) {
		t.Fatalf("embedded and real Redis differ:\n%s\nvs\n%s", list(first), list(onRedis))
	}
}

func TestReplayClockIsTheEventsClock(t *testing.T) {
	// Events a year in the future of the wall clock are replayed, not
	// refused as clock-skewed: the processor's clock is the events'.
	at := time.Now().AddDate(1, 0, 0).UTC().Truncate(time.Second)
	c := &class{}
	for sec := 0; sec < 5; sec++ {
		c.add(t, false, &stream.Score{Header: stream.NewHeader("f1", at.Add(time.Duration(sec)*time.Second)),
			Session: "F", Course: "calculus", WindowMS: 1000, Frames: 10, FaceRatio: 1, Attention: 1, Model: "m"})
	}
	_, rep := runReplay(t, c.lines)
	if rep.Refused != 0 || rep.Events != 5 {
		t.Fatalf("report %+v: future events were refused", rep)
	}
}

func TestConfigValidateRejectsImpossibleSettings(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"negative tick", Config{Tick: -time.Second}},
		{"tick over an hour", Config{Tick: 2 * time.Hour}},
		{"negative batch", Config{MaxBatch: -1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.cfg, rules.NewHolder(rules.DefaultPolicy()), nil); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestReplayRefusesAScratchRedisThatHoldsData(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	if err := rdb.Set(context.Background(), "someone-elses", "data", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{}, rules.NewHolder(rules.DefaultPolicy()), nil, WithRedis(rdb))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = r.Run(context.Background(), strings.NewReader(strings.Join(generatedClass(t)[:5], "\n")), &out)
	if err == nil || !strings.Contains(err.Error(), "holds 1 keys") {
		t.Fatalf("err = %v, want a refusal of the non-empty database", err)
	}
	if v, _ := rdb.Get(context.Background(), "someone-elses").Result(); v != "data" || out.Len() != 0 {
		t.Fatalf("the replay touched the database or wrote output")
	}
}
