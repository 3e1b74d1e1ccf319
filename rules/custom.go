package rules

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/ext"

	"github.com/classpulse/classpulse/stream"
)

// celStudent is the object custom rules see as `student`. Its fields are
// documented in docs/policy.md; they are derived from the Snapshot and the
// policy so that rules need not repeat the calendar arithmetic.
type celStudent struct {
	ID                    string      `cel:"id"`
	Class                 string      `cel:"class"`
	Now                   time.Time   `cel:"now"`
	Term                  string      `cel:"term"`
	Period                string      `cel:"period"`
	Minor                 bool        `cel:"minor"`
	WantsDegree           bool        `cel:"wants_degree"`
	GraduationYear        int64       `cel:"graduation_year"`
	ForeignLanguagePassed bool        `cel:"foreign_language_passed"`
	Unit                  string      `cel:"unit"`
	InLive                bool        `cel:"in_live"`
	Live                  celLive     `cel:"live"`
	Courses               []celCourse `cel:"courses"`
	Grades                []celGrade  `cel:"grades"`
	FailedCourses         int64       `cel:"failed_courses"`
	AverageScore          float64     `cel:"average_score"`
}

type celLive struct {
	Session      string  `cel:"session"`
	Course       string  `cel:"course"`
	Captured     bool    `cel:"captured"`
	Attention1m  float64 `cel:"attention_1m"`
	Attention2m  float64 `cel:"attention_2m"`
	Attention5m  float64 `cel:"attention_5m"`
	Face1m       float64 `cel:"face_1m"`
	Face2m       float64 `cel:"face_2m"`
	Face5m       float64 `cel:"face_5m"`
	Masked1m     float64 `cel:"masked_1m"`
	Confused1m   float64 `cel:"confused_1m"`
	Confused2m   float64 `cel:"confused_2m"`
	Confused5m   float64 `cel:"confused_5m"`
	Frustrated1m float64 `cel:"frustrated_1m"`
	Frustrated2m float64 `cel:"frustrated_2m"`
	Frustrated5m float64 `cel:"frustrated_5m"`
	Engaged1m    float64 `cel:"engaged_1m"`
	Bored1m      float64 `cel:"bored_1m"`
	Samples1m    int64   `cel:"samples_1m"`
	Samples2m    int64   `cel:"samples_2m"`
	Samples5m    int64   `cel:"samples_5m"`
	FaceAbsentS  float64 `cel:"face_absent_seconds"`
}

type celCourse struct {
	ID                string           `cel:"id"`
	Name              string           `cel:"name"`
	Term              string           `cel:"term"`
	Current           bool             `cel:"current"`
	Known             bool             `cel:"known"`
	Difficulty        float64          `cel:"difficulty"`
	Elective          bool             `cel:"elective"`
	Core              bool             `cel:"core"`
	StudyHours        float64          `cel:"study_hours"`
	RequiredSoFar     float64          `cel:"required_hours_so_far"`
	RequiredTotal     float64          `cel:"required_hours_total"`
	LastWeekHours     float64          `cel:"last_week_hours"`
	PreviousWeekHours float64          `cel:"previous_week_hours"`
	Clicks            map[string]int64 `cel:"clicks"`
	ClicksTotal       int64            `cel:"clicks_total"`
	PeerN             int64            `cel:"peer_n"`
	PeerMedianHours   float64          `cel:"peer_median_hours"`
	PeerMeanHours     float64          `cel:"peer_mean_hours"`
	Percentile        float64          `cel:"percentile"`
}

type celGrade struct {
	Course   string  `cel:"course"`
	Term     string  `cel:"term"`
	Score    float64 `cel:"score"`
	Passed   bool    `cel:"passed"`
	Elective bool    `cel:"elective"`
	Core     bool    `cel:"core"`
}

// compiledRule is a custom rule ready to run.
type compiledRule struct {
	CustomRule
	family   Family
	when     cel.Program
	evidence []namedProgram
}

type namedProgram struct {
	name string
	prg  cel.Program
}

// celEnv builds the CEL environment custom rules are checked against.
func celEnv() (*cel.Env, error) {
	return cel.NewEnv(
		ext.NativeTypes(reflect.TypeFor[celStudent](), ext.ParseStructTags(true)),
		fastViews(),
		cel.Variable("student", cel.ObjectType("rules.celStudent")),
		ext.Strings(),
		ext.Math(),
	)
}

// celCostLimit bounds the work one custom rule may do per evaluation.
const celCostLimit = 100000

// compileCustom checks and compiles every custom rule, recording problems
// (with the rule's line) in v.
func (p *Policy) compileCustom(v *validator) {
	if len(p.Custom) == 0 {
		return
	}
	env, err := celEnv()
	if err != nil {
		v.errf(at(nil, "custom"), "CEL environment: %v", err)
		return
	}
	ids := map[string]bool{}
	for i := range p.Custom {
		r := p.Custom[i]
		rp := at(nil, "custom", i)
		bad := len(v.problems)
		if !validIdent(r.ID) {
			v.errf(at(rp, "id"), "required: 1..64 letters, digits and -_.:@ (got %q)", r.ID)
		} else if _, ok := builtinRules[r.ID]; ok {
			v.errf(at(rp, "id"), "%q is a built-in rule id", r.ID)
		} else if ids[r.ID] {
			v.errf(at(rp, "id"), "duplicate custom rule %q", r.ID)
		}
		ids[r.ID] = true
		if r.Category == "" {
			r.Category = stream.CategoryCustom
		}
		if !slices.Contains(stream.WarningCategories, r.Category) || r.Category == stream.CategoryClass {
			v.errf(at(rp, "category"), "must be one of study, grade, degree, engagement, risk, custom (got %q)", r.Category)
		}
		if r.Level == "" {
			r.Level = stream.LevelYellow
		}
		if stream.LevelRank(r.Level) == 0 {
			v.errf(at(rp, "level"), "must be info, yellow or red (got %q)", r.Level)
		}
		fam := FamilyAcademic
		switch r.Family {
		case "", "academic":
			r.Family = "academic"
		case "live":
			fam = FamilyLive
		default:
			v.errf(at(rp, "family"), "must be academic or live (got %q)", r.Family)
		}
		if strings.TrimSpace(r.Reason) == "" || len(r.Reason) > 1000 {
			v.errf(at(rp, "reason"), "required, at most 1000 bytes")
		}
		if len(r.Evidence) > 32 {
			v.errf(at(rp, "evidence"), "at most 32 entries")
		}
		name := r.ID
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		when, msg := compileExpr(env, r.When, cel.BoolType)
		if msg != "" {
			v.errf(at(rp, "when"), "rule %s: %s", name, msg)
		}
		p.Custom[i] = r // with its defaults filled in
		cr := &compiledRule{CustomRule: r, family: fam, when: when}
		for _, k := range sortedKeys(r.Evidence) {
			if !validIdent(k) {
				v.errf(at(rp, "evidence", k), "evidence names are 1..64 letters, digits and -_.:@")
				continue
			}
			prg, msg := compileExpr(env, r.Evidence[k], cel.DoubleType)
			if msg != "" {
				v.errf(at(rp, "evidence", k), "rule %s: %s", name, msg)
				continue
			}
			cr.evidence = append(cr.evidence, namedProgram{k, prg})
		}
		if len(v.problems) == bad {
			p.custom = append(p.custom, cr)
		}
	}
}

// compileExpr parses, type-checks and plans src, which must yield want.
// It returns a message instead of an error so callers can place it.
func compileExpr(env *cel.Env, src string, want *cel.Type) (cel.Program, string) {
	if strings.TrimSpace(src) == "" {
		return nil, "expression required"
	}
	if len(src) > 4000 {
		return nil, "expression longer than 4000 bytes"
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, "CEL: " + strings.ReplaceAll(iss.Err().Error(), "\n", " ")
	}
	if !ast.OutputType().IsExactType(want) {
		return nil, fmt.Sprintf("CEL: yields %s, want %s", ast.OutputType(), want)
	}
	prg, err := env.Program(ast, cel.CostLimit(celCostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, "CEL: " + err.Error()
	}
	return prg, ""
}

// custom runs the custom rules of the families in fam. A rule that fails
// at run time (a missing map key, the cost limit) does not fire.
func (e *evaluator) custom(fam Family) {
	var view *celStudent
	for _, r := range e.p.custom {
		if r.family&fam == 0 || (r.family == FamilyLive && (e.s.Live == nil || !e.s.Live.Captured)) {
			continue
		}
		if view == nil {
			view = e.celView()
		}
		act := map[string]any{"student": view}
		out, _, err := r.when.Eval(act)
		if err != nil || out.Value() != true {
			continue
		}
		ev := make(map[string]float64, len(r.evidence))
		for _, np := range r.evidence {
			v, _, err := np.prg.Eval(act)
			if err != nil {
				continue
			}
			if x, ok := v.Value().(float64); ok && finite(x) && math.Abs(x) <= 1e12 {
				ev[np.name] = x
			}
		}
		e.add(r.ID, r.family, r.Category, r.Level, "", r.Reason, ev)
	}
}

// celView builds the student object custom rules see.
func (e *evaluator) celView() *celStudent {
	p, s := e.p, e.s
	v := &celStudent{
		ID: s.Student, Class: s.Class, Now: s.Now,
		Minor: s.Profile.Minor, WantsDegree: s.Profile.WantsDegree,
		GraduationYear:        int64(s.Profile.GraduationYear),
		ForeignLanguagePassed: s.Profile.ForeignLanguagePassed, Unit: s.Profile.Unit,
	}
	term := p.TermAt(s.Now)
	if term != nil {
		v.Term = term.ID
		if k := term.periodIndex(s.Now); k >= 0 {
			v.Period = term.Periods[k].Name
		}
	}
	if l := s.Live; l != nil {
		v.InLive = true
		v.Live = celLive{
			Session: l.Session, Course: l.Course, Captured: l.Captured,
			Attention1m: l.Attention1m, Attention2m: l.Attention2m, Attention5m: l.Attention5m,
			Face1m: l.Face1m, Face2m: l.Face2m, Face5m: l.Face5m, Masked1m: l.Masked1m,
			Confused1m: l.Confused1m, Confused2m: l.Confused2m, Confused5m: l.Confused5m,
			Frustrated1m: l.Frustrated1m, Frustrated2m: l.Frustrated2m, Frustrated5m: l.Frustrated5m,
			Engaged1m: l.Engaged1m, Bored1m: l.Bored1m,
			Samples1m: int64(l.Samples1m), Samples2m: int64(l.Samples2m), Samples5m: int64(l.Samples5m),
			FaceAbsentS: l.FaceAbsentSeconds,
		}
	}
	lastKey, prevKey := p.LastWeeks(s.Now)
	v.Courses = make([]celCourse, 0, len(s.Courses))
	for i := range s.Courses {
		cs := &s.Courses[i]
		cc := celCourse{
			ID: cs.Course, Name: cs.Course, Term: cs.Term, Current: term != nil && cs.Term == term.ID,
			Difficulty: 1, StudyHours: cs.StudySecondsTotal / 3600,
			LastWeekHours: cs.WeekStudySeconds[lastKey] / 3600, PreviousWeekHours: cs.WeekStudySeconds[prevKey] / 3600,
			Clicks: cs.Clicks,
		}
		if cc.Clicks == nil {
			cc.Clicks = map[string]int64{}
		}
		for _, n := range cs.Clicks {
			cc.ClicksTotal += n
		}
		if c := p.Course(cs.Course); c != nil {
			cc.Known, cc.Name, cc.Difficulty, cc.Elective, cc.Core = true, c.Name, c.Difficulty, c.Elective, c.Core
			if t := p.Term(cs.Term); t != nil {
				soFar, total, _ := c.requiredHours(t, s.Now, p.Study.Basis)
				d := e.requiredScale(c)
				cc.RequiredSoFar, cc.RequiredTotal = soFar*d, total*d
			}
		}
		if ps, ok := s.Peers[cs.Course]; ok && cc.Current {
			cc.PeerN, cc.PeerMedianHours, cc.PeerMeanHours, cc.Percentile = int64(ps.N), ps.Median/3600, ps.Mean/3600, ps.Percentile
		}
		v.Courses = append(v.Courses, cc)
	}
	v.Grades = make([]celGrade, 0, len(s.Grades))
	for _, g := range s.Grades {
		v.Grades = append(v.Grades, celGrade{g.Course, g.Term, g.Score, g.Passed, e.isElective(&g), e.isCore(&g)})
	}
	_, failed := e.latestTermFailures()
	v.FailedCourses = int64(len(failed))
	v.AverageScore, _ = e.averages()
	return v
}
