package dashboard

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/stream"
)

// categoryNames are the categories' names on notices and summaries.
var categoryNames = map[string][2]string{
	stream.CategoryStudy:      {"学习状态预警", "study-time warning"},
	stream.CategoryGrade:      {"学习成绩预警", "grade warning"},
	stream.CategoryDegree:     {"毕业学位预警", "degree warning"},
	stream.CategoryEngagement: {"课堂参与信号", "live engagement signal"},
	stream.CategoryClass:      {"班级参与信号", "class engagement signal"},
	stream.CategoryRisk:       {"学业风险提示", "early risk notice"},
	stream.CategoryCustom:     {"学校自定义预警", "school rule warning"},
}

var levelNames = map[string][2]string{
	stream.LevelInfo:   {"提示", "notice"},
	stream.LevelYellow: {"黄色预警", "yellow"},
	stream.LevelRed:    {"红色预警", "red"},
}

// evidenceNames explain the numbers rules put in evidence; unknown keys are
// shown as they are.
var evidenceNames = map[string][2]string{
	"attention":       {"注意力（滚动平均，0–1）", "attention (rolling mean, 0–1)"},
	"threshold":       {"阈值", "threshold"},
	"window_s":        {"统计窗口（秒）", "window (seconds)"},
	"absent_s":        {"未检测到人脸时长（秒）", "time without a face (seconds)"},
	"failed":          {"不及格课程数", "failed courses"},
	"courses_below":   {"学习时长不足的课程数", "courses with too little study time"},
	"study_s":         {"在线学习时长（秒）", "online study time (seconds)"},
	"required_s":      {"要求学习时长（秒）", "required study time (seconds)"},
	"share":           {"班级比例", "share of the class"},
	"confused":        {"困惑程度", "confusion"},
	"drop":            {"环比下降比例", "drop week over week"},
	"percentile":      {"班级百分位", "percentile in class"},
	"average":         {"平均成绩", "average score"},
	"core_average":    {"核心课程平均成绩", "core-course average"},
	"students":        {"学生人数", "students"},
	"share_attentive": {"专注学生比例", "share attentive"},
}

// Explanation is a warning told in plain language, in Chinese and English.
type Explanation struct {
	Ref      string            `json:"ref"`
	Category [2]string         `json:"category"`
	Level    [2]string         `json:"level"`
	Reason   string            `json:"reason"`
	Evidence []EvidenceLine    `json:"evidence"`
	Rights   [2]string         `json:"rights"`
	Meta     map[string]string `json:"meta,omitempty"`
}

// EvidenceLine is one number behind a warning.
type EvidenceLine struct {
	Key   string    `json:"key"`
	Name  [2]string `json:"name"`
	Value float64   `json:"value"`
}

func explain(rec *queue.Record) Explanation {
	e := Explanation{
		Ref: rec.Ref, Category: categoryNames[rec.Category], Level: levelNames[rec.Level], Reason: rec.Reason,
		Rights: [2]string{
			"本预警由系统依据学校规定的规则生成，并经工作人员确认后发送给你。系统不会单独对你作出任何决定。如有疑问，请联系你的辅导员。",
			"This warning was produced by the school's published rules and sent to you only after a staff member confirmed it. No decision about you is taken by the system alone. Ask your counsellor about anything here.",
		},
		Evidence: []EvidenceLine{},
	}
	keys := make([]string, 0, len(rec.Evidence))
	for k := range rec.Evidence {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		n, ok := evidenceNames[k]
		if !ok {
			n = [2]string{k, k}
		}
		e.Evidence = append(e.Evidence, EvidenceLine{Key: k, Name: n, Value: rec.Evidence[k]})
	}
	return e
}

// Notice is the printable 学业预警通知书 of one warning, with its stub.
type Notice struct {
	School  string             `json:"school"`
	Serial  string             `json:"serial"`
	Student string             `json:"student"`
	Roster  *queue.RosterEntry `json:"roster,omitempty"`
	Issued  time.Time          `json:"issued"`
	Owner   string             `json:"owner,omitempty"`
	Minor   bool               `json:"minor"`
	Explain Explanation        `json:"explain"`
	Course  string             `json:"course,omitempty"`
	Term    string             `json:"term,omitempty"`
	Plan    []string           `json:"plan,omitempty"`
	PlanDue *time.Time         `json:"plan_due,omitempty"`
}

func (s *Server) apiNotice(w http.ResponseWriter, r *http.Request, p *Principal) {
	rec := s.loadRecord(w, r, p)
	if rec == nil {
		return
	}
	if rec.Serial == "" {
		writeErr(w, http.StatusConflict, "ref", "no notice issued for this warning yet: record a notice step first")
		return
	}
	n := Notice{School: s.cfg.SchoolName, Serial: rec.Serial, Student: rec.Student, Owner: rec.Owner, Explain: explain(rec), Course: rec.Course, Term: rec.Term}
	if rec.NoticedAt != nil {
		n.Issued = *rec.NoticedAt
	}
	if e, err := s.store.Roster(r.Context(), rec.Student); err == nil {
		n.Roster, n.Minor = e, e.Minor
	}
	if steps, err := s.store.Steps(r.Context(), rec.Ref); err == nil {
		for _, st := range steps {
			if st.Action == stream.ActionPlan {
				n.Plan = st.Tasks
				if st.Due != nil {
					t := st.Due.Time
					n.PlanDue = &t
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, n)
}

// SummaryRow is one line of the term summary table (学业预警汇总表).
type SummaryRow struct {
	No       int        `json:"no"`
	Serial   string     `json:"serial,omitempty"`
	Student  string     `json:"student"`
	Name     string     `json:"name,omitempty"`
	Unit     string     `json:"unit,omitempty"`
	Class    string     `json:"class,omitempty"`
	Category string     `json:"category"`
	Level    string     `json:"level"`
	State    string     `json:"state"`
	Loop     string     `json:"loop"`
	Result   string     `json:"result,omitempty"`
	Owner    string     `json:"owner,omitempty"`
	Raised   time.Time  `json:"raised"`
	Closed   *time.Time `json:"closed,omitempty"`
}

// summaryHeader is the CSV header, bilingual so either reader can use it.
var summaryHeader = []string{
	"序号 No", "通知书编号 Serial", "学号 Student", "姓名 Name", "教学单位 Unit", "班级 Class",
	"预警类别 Category", "预警级别 Level", "状态 State", "帮扶进度 Loop", "结果 Result", "负责人 Owner",
	"预警时间 Raised", "结束时间 Closed",
}

func (s *Server) apiSummary(w http.ResponseWriter, r *http.Request, p *Principal) {
	q := r.URL.Query()
	unit, term, format := q.Get("unit"), q.Get("term"), q.Get("format")
	if unit != "" && !validIdent(unit) {
		writeErr(w, http.StatusBadRequest, "unit", "not a unit id")
		return
	}
	if term == "" {
		term = queue.TermOf(s.now())
	} else if !validIdent(term) {
		writeErr(w, http.StatusBadRequest, "term", "not a term id (e.g. 2025-spring)")
		return
	}
	if format != "" && format != "json" && format != "csv" {
		writeErr(w, http.StatusBadRequest, "format", "json or csv")
		return
	}
	switch p.Role {
	case RoleAdmin:
	case RoleCounsellor:
		if unit == "" || !slices.Contains(p.Units, unit) {
			s.deny(w, r, p, http.StatusForbidden, "summaries are per teaching unit; name one of your units")
			return
		}
	default:
		s.deny(w, r, p, http.StatusForbidden, "summaries are for counsellors and admins")
		return
	}
	rows, err := s.summary(r, unit, term)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, "", err.Error())
		return
	}
	if format == "csv" {
		name := "summary-" + term
		if unit != "" {
			name += "-" + unit
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		// A byte-order mark makes spreadsheet programs read the Chinese right.
		_, _ = w.Write([]byte("\ufeff"))
		cw := csv.NewWriter(w)
		_ = cw.Write(summaryHeader)
		for _, row := range rows {
			closed := ""
			if row.Closed != nil {
				closed = row.Closed.Format("2006-01-02")
			}
			_ = cw.Write([]string{
				strconv.Itoa(row.No), row.Serial, csvSafe(row.Student), csvSafe(row.Name), row.Unit, row.Class,
				categoryNames[row.Category][0], levelNames[row.Level][0], row.State, row.Loop, row.Result, row.Owner,
				row.Raised.Format("2006-01-02"), closed,
			})
		}
		cw.Flush()
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"school": s.cfg.SchoolName, "unit": unit, "term": term, "rows": rows})
}

// csvSafe stops a spreadsheet from reading a cell as a formula.
func csvSafe(v string) string {
	if v != "" && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@') {
		return "'" + v
	}
	return v
}

func (s *Server) summary(r *http.Request, unit, term string) ([]SummaryRow, error) {
	f := queue.Filter{Unit: unit, Term: term, Limit: 1000,
		ExcludeCategories: []string{stream.CategoryEngagement, stream.CategoryClass}}
	var rows []SummaryRow
	for {
		recs, total, err := s.store.List(r.Context(), f)
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			row := SummaryRow{
				Serial: rec.Serial, Student: rec.Student, Unit: rec.Unit, Category: rec.Category,
				Level: rec.MaxLevel, State: rec.State, Loop: rec.Loop, Result: rec.Result, Owner: rec.Owner,
				Raised: rec.RaisedAt, Closed: rec.ClosedAt,
			}
			if row.Level == "" {
				row.Level = rec.Level
			}
			if e, err := s.store.Roster(r.Context(), rec.Student); err == nil {
				row.Name, row.Class = e.Name, e.Class
			} else if !errors.Is(err, queue.ErrNotFound) {
				return nil, err
			}
			rows = append(rows, row)
		}
		f.Offset += len(recs)
		if len(recs) == 0 || f.Offset >= total {
			break
		}
		if f.Offset > 200000 {
			return nil, fmt.Errorf("summary larger than 200000 rows; narrow it by unit")
		}
	}
	// The table lists students in order, oldest warning first per student.
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Unit != rows[j].Unit {
			return rows[i].Unit < rows[j].Unit
		}
		if rows[i].Student != rows[j].Student {
			return rows[i].Student < rows[j].Student
		}
		return rows[i].Raised.Before(rows[j].Raised)
	})
	for i := range rows {
		rows[i].No = i + 1
	}
	return rows, nil
}
