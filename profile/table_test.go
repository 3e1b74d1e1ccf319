package profile

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestReadCSVReportsEveryBadRowWithColumnAndReason(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error, in order
	}{
		{"text in a number column", "id,quiz_score,final_score\ns1,12,80\ns2,twelve,70\n", []string{`row 2 (line 3), column "quiz_score": "twelve" is not a number`}},
		{"infinite value", "id,quiz_score,final_score\ns1,Inf,80\n", []string{`row 1 (line 2), column "quiz_score": "Inf" is not a finite number`}},
		{"empty id", "id,quiz_score,final_score\n,12,80\n", []string{`row 1 (line 2), column "id": id is empty`}},
		{"missing label", "id,quiz_score,final_score\ns1,12,\n", []string{`column "final_score": label is missing`}},
		{"wrong field count", "id,quiz_score,final_score\ns1,12\ns2,1,2,3\n", []string{"row 1 (line 2): 2 fields, the header has 3", "row 2 (line 3): 4 fields"}},
		{"bare quote", "id,quiz_score,final_score\ns1,1\"2,80\n", []string{"row 1 (line 2): unreadable CSV"}},
		{"two bad rows listed together", "id,quiz_score,final_score\ns1,x,80\ns2,5,80\ns3,y,80\n", []string{"2 bad rows", "row 1", "row 3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCSV(strings.NewReader(tc.in), CSVOptions{Label: ColFinalScore})
			if err == nil {
				t.Fatal("no error")
			}
			var ie *InputError
			if !errors.As(err, &ie) || !errors.Is(err, ErrBadInput) {
				t.Fatalf("error %v is not an InputError wrapping ErrBadInput", err)
			}
			msg := err.Error()
			at := 0
			for _, w := range tc.want {
				i := strings.Index(msg[at:], w)
				if i < 0 {
					t.Fatalf("error %q lacks %q (after offset %d)", msg, w, at)
				}
				at += i
			}
		})
	}
}

func TestReadCSVRejectsBadHeaders(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty input", "", "empty input"},
		{"no id column", "student_no,quiz_score\n1,2\n", `no id column "id"`},
		{"duplicate column", "id,quiz_score,quiz_score\ns,1,2\n", "twice"},
		{"unnamed column", "id,,quiz_score\ns,1,2\n", "has no name"},
		{"only basic columns", "id,name,class\ns,a,b\n", "no feature columns"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCSV(strings.NewReader(tc.in), CSVOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrBadInput) {
				t.Fatalf("err = %v, want ErrBadInput mentioning %q", err, tc.want)
			}
		})
	}
}

func TestReadCSVImputesDocumentedMissingSpellingsAsNaN(t *testing.T) {
	in := "\uFEFFid,class,quiz_score,study_seconds\ns1,c1,,10\ns2,c1,NA,n/a\ns3,c2,NaN,null\ns4,c2,7.5,3\n"
	tb, err := ReadCSV(strings.NewReader(in), CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tb.Columns, ","); got != "quiz_score,study_seconds" {
		t.Fatalf("columns %q: class is basic and must not be a feature", got)
	}
	missing := 0
	for _, r := range tb.Rows {
		for _, v := range r {
			if math.IsNaN(v) {
				missing++
			}
		}
	}
	if missing != 5 || tb.Rows[3][0] != 7.5 || tb.Text["class"][2] != "c2" {
		t.Fatalf("rows %v text %v: want 5 missing cells", tb.Rows, tb.Text)
	}
	med := Medians(tb.Rows, 2)
	if n := Impute(tb.Rows, med); n != 5 || tb.Rows[0][0] != 7.5 || tb.Rows[0][1] != 10 {
		t.Fatalf("imputed %d cells, rows %v", n, tb.Rows)
	}
}

func TestWriteCSVRoundTrips(t *testing.T) {
	c, err := GenerateCohort(CohortConfig{Students: 50, Seed: 3, Windows: 2})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := c.Table.WriteCSV(&b, ""); err != nil {
		t.Fatal(err)
	}
	back, err := ReadCSV(strings.NewReader(b.String()), CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if back.Len() != 50 || len(back.Columns) != len(c.Table.Columns) {
		t.Fatalf("read back %d rows × %d columns", back.Len(), len(back.Columns))
	}
	for i := range back.Rows {
		for j := range back.Rows[i] {
			if back.Rows[i][j] != c.Table.Rows[i][j] {
				t.Fatalf("cell %d,%d: %v != %v", i, j, back.Rows[i][j], c.Table.Rows[i][j])
			}
		}
	}
}

func TestLabelsToClassesGradesScoresAndKeepsNames(t *testing.T) {
	tests := []struct {
		name    string
		labels  []string
		classes string
		y       []int
	}{
		{"scores become grades", []string{"95", "80", "79.9", "60", "12"}, "A,B,C,D", []int{0, 1, 2, 2, 3}},
		{"names stay classes", []string{"pass", "fail", "pass"}, "fail,pass", []int{1, 0, 1}},
		{"out of range numbers are names", []string{"120", "5"}, "120,5", []int{0, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			classes, y, err := LabelsToClasses(tc.labels)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(classes, ",") != tc.classes {
				t.Fatalf("classes %v, want %s", classes, tc.classes)
			}
			for i := range y {
				if y[i] != tc.y[i] {
					t.Fatalf("y = %v, want %v", y, tc.y)
				}
			}
		})
	}
}

func TestScalerMapsToUnitRangeAndClips(t *testing.T) {
	rows := [][]float64{{0, 5, 1}, {10, 5, 3}, {5, 5, math.NaN()}}
	s := FitScaler(rows, 3)
	got := s.Transform([][]float64{{5, 5, 2}, {20, 5, -1}})
	want := [][]float64{{0.5, 0, 0.5}, {1, 0, 0}}
	for i := range want {
		for j := range want[i] {
			if math.Abs(got[i][j]-want[i][j]) > 1e-12 {
				t.Fatalf("transform = %v, want %v", got, want)
			}
		}
	}
}

func TestGroupOfFollowsTheStudy(t *testing.T) {
	tests := map[string]Group{
		"class": GroupBasic, "name": GroupBasic, "attendance": GroupBehaviour, "video_seconds": GroupBehaviour,
		"quiz_score": GroupOutcome, "final_score": GroupOutcome, "video_views": GroupEmotion,
		"course_visits": GroupEmotion, "confused": GroupEmotion, "quiz_w3": GroupBehaviour, "library_visits": GroupBehaviour,
	}
	for col, want := range tests {
		if got := GroupOf(col); got != want {
			t.Errorf("GroupOf(%q) = %s, want %s", col, got, want)
		}
	}
	if k, w, ok := parseWindowFeature("player_control_w12"); !ok || k != "player_control" || w != 12 {
		t.Errorf("parseWindowFeature = %s %d %v", k, w, ok)
	}
	if _, _, ok := parseWindowFeature("bogus_w1"); ok {
		t.Error("bogus_w1 parsed as a windowed count")
	}
}
