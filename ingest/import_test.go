package ingest

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

const rosterCSV = "\xef\xbb\xbfStudent,Name,Class,Unit,Minor,Wants_Degree,Graduation_Year,Foreign_Language_Passed,Counsellor,Guardian,Remarks\n" +
	"s1,Li Lei,C1,U1,yes,1,2026,no,c.wang,g.li,\n" +
	"s2,\"Han, Meimei\",C1,U1,0,true,2027,1,c.wang;c.zhao,,transferred\n" +
	"\n" +
	"s3,Wang,C2,U2,0,0,2026,0,,,\n"

func table(t *testing.T, name, data string) *Table {
	t.Helper()
	tb, err := ReadTable(name, strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	r := testenv.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestImportRosterWritesProfilesAndDashboardRoster(t *testing.T) {
	ctx := context.Background()
	rdb := redisClient(t)
	im, err := NewImporter(ImportConfig{Kind: KindRoster}, rdb, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := im.Import(ctx, table(t, "roster.csv", rosterCSV))
	if err != nil {
		t.Fatalf("%v %+v", err, rep)
	}
	if rep.Rows != 3 || rep.Valid != 3 || rep.Keys != 3 || len(rep.Ignored) != 1 || rep.Ignored[0] != "remarks" {
		t.Fatalf("report %+v", rep)
	}
	got, _ := rdb.HGetAll(ctx, state.ProfileKey("s2")).Result()
	want := map[string]string{"name": "Han, Meimei", "class": "C1", "unit": "U1", "minor": "0", "wants_degree": "1",
		"graduation_year": "2027", "foreign_language_passed": "1", "counsellors": "c.wang,c.zhao", "guardians": ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("profile of s2 = %v\nwant %v", got, want)
	}
	if m, _ := rdb.HGet(ctx, state.ProfileKey("s1"), "minor").Result(); m != "1" {
		t.Fatalf("s1 minor = %q", m)
	}
	e, err := queue.NewStore(rdb).Roster(ctx, "s1")
	if err != nil || e.Unit != "U1" || !e.Minor || e.Name != "Li Lei" {
		t.Fatalf("dashboard roster of s1 = %+v, %v", e, err)
	}
	// Importing again changes nothing.
	before, _ := rdb.Keys(ctx, "*").Result()
	if _, err := im.Import(ctx, table(t, "roster.csv", rosterCSV)); err != nil {
		t.Fatal(err)
	}
	after, _ := rdb.Keys(ctx, "*").Result()
	if len(before) != len(after) {
		t.Fatalf("re-import changed the key count %d → %d", len(before), len(after))
	}
}

func TestImportRosterKeepsTheUnder14FlagForTheGuardianConsentRule(t *testing.T) {
	ctx := context.Background()
	rdb := redisClient(t)
	im, err := NewImporter(ImportConfig{Kind: KindRoster}, rdb, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := im.Import(ctx, table(t, "roster.csv", "student,minor,under_14\nk1,1,1\nk2,1,0\nk3,1,\n")); err != nil {
		t.Fatal(err)
	}
	for student, want := range map[string]string{"k1": "1", "k2": "0", "k3": "0"} {
		if got, _ := rdb.HGet(ctx, state.ProfileKey(student), "under_14").Result(); got != want {
			t.Errorf("%s under_14 = %q, want %q", student, got, want)
		}
	}
}

func TestImportReportsRowErrorsAndWritesNothing(t *testing.T) {
	ctx := context.Background()
	bad := "student,class,minor,under_14,graduation_year,guardian\n" +
		"s1,C1,1,1,2026,g1\n" +
		"{s2},C1,0,,2026,\n" +
		"s3,C 1,maybe,,20x6,\n" +
		"s4,C1,0,1,2026,g4\n" +
		"s1,C2,1,,2026,\n"
	for _, c := range []struct {
		name   string
		dryRun bool
	}{{"dry run", true}, {"real run refuses", false}} {
		t.Run(c.name, func(t *testing.T) {
			rdb := redisClient(t)
			im, err := NewImporter(ImportConfig{Kind: KindRoster, DryRun: c.dryRun}, rdb, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := im.Import(ctx, table(t, "r.csv", bad))
			if c.dryRun && err != nil || !c.dryRun && !errors.Is(err, ErrRowErrors) {
				t.Fatalf("err = %v", err)
			}
			want := []RowError{
				{Row: 3, Column: "student"}, {Row: 4, Column: "class"}, {Row: 4, Column: "minor"},
				{Row: 4, Column: "graduation_year"}, {Row: 5, Column: "under_14"}, {Row: 5, Column: "guardian"}, {Row: 6, Column: ""},
			}
			if len(rep.Errors) != len(want) {
				t.Fatalf("errors %+v, want %d", rep.Errors, len(want))
			}
			for i, w := range want {
				if g := rep.Errors[i]; g.Row != w.Row || g.Column != w.Column || g.Reason == "" {
					t.Errorf("error %d = %+v, want row %d column %q with a reason", i, g, w.Row, w.Column)
				}
			}
			if rep.Written {
				t.Fatal("report says written")
			}
			if n, _ := rdb.DBSize(ctx).Result(); n != 0 {
				t.Fatalf("%d keys written", n)
			}
		})
	}
}

func TestImportMissingRequiredColumnIsAFileError(t *testing.T) {
	im, _ := NewImporter(ImportConfig{Kind: KindGrades, DryRun: true}, nil, nil, nil)
	_, err := im.Import(context.Background(), table(t, "g.csv", "student,course,score\ns1,C1,80\n"))
	if !errors.Is(err, ErrBadFile) || !strings.Contains(err.Error(), `"term"`) {
		t.Fatalf("err = %v, want a bad file naming term", err)
	}
}

func readTopic(t *testing.T, addr, topic string, partitions int) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for p := 0; p < partitions; p++ {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: p, MaxWait: 50 * time.Millisecond})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			m, err := r.ReadMessage(ctx)
			cancel()
			if err != nil {
				break
			}
			out = append(out, m)
		}
		r.Close()
	}
	return out
}

func TestImportGradesPublishesWithStableIDs(t *testing.T) {
	ctx := context.Background()
	b := testenv.StartBroker(t, 1)
	p := newProducer(t, b.Addr())
	grades := "student,course,term,score,passed,elective,core\n" +
		"s1,MATH101,2025S,55,,no,yes\n" +
		"s1,PE1,2025S,90,,yes,no\n" +
		"s2,MATH101,2025S,61.5,0,,\n"
	im, _ := NewImporter(ImportConfig{Kind: KindGrades}, nil, p, nil)
	rep1, err := im.Import(ctx, table(t, "g.csv", grades))
	if err != nil {
		t.Fatal(err)
	}
	rep2, err := im.Import(ctx, table(t, "g.csv", grades))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep1.IDs) != fmt.Sprint(rep2.IDs) || rep1.Events != 3 {
		t.Fatalf("re-import ids %v vs %v", rep1.IDs, rep2.IDs)
	}
	msgs := readTopic(t, b.Addr(), stream.TopicGrades, 1)
	if len(msgs) != 6 {
		t.Fatalf("%d grade events, want 6", len(msgs))
	}
	passed := map[string]bool{}
	for _, m := range msgs[:3] {
		e, err := stream.Decode(stream.TopicGrades, m.Value)
		if err != nil {
			t.Fatal(err)
		}
		g := e.(*stream.Grade)
		passed[g.Student+"/"+g.Course] = g.Passed
		if g.Course == "PE1" && !g.Elective || g.Course == "MATH101" && g.Student == "s1" && !g.Core {
			t.Errorf("flags lost: %+v", g)
		}
	}
	// 55 < the default pass mark 60; s2's passed column overrides 61.5.
	if passed["s1/MATH101"] || !passed["s1/PE1"] || passed["s2/MATH101"] {
		t.Fatalf("passed = %v", passed)
	}
}

func TestImportSignalsGoToKafkaAndTheRedisView(t *testing.T) {
	ctx := context.Background()
	b := testenv.StartBroker(t, 1)
	createTopic(t, b.Addr(), TopicSignals)
	rdb := redisClient(t)
	p := newProducer(t, b.Addr())
	sh, _ := time.LoadLocation("Asia/Shanghai")
	data := "student,kind,ts,value,detail\n" +
		"s1,card,2025-03-03 12:05,18.5,canteen\n" +
		"s1,library,2025-03-03T19:00:00+08:00,,\n" +
		"s2,activity,2025/03/04 15:00,,chess club\n" +
		"s2,dorm,yesterday,,\n"
	im, _ := NewImporter(ImportConfig{Kind: KindSignals, Location: sh, Source: "card-system", AllowPartial: true}, rdb, p, nil)
	rep, err := im.Import(ctx, table(t, "sig.csv", data))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Valid != 3 || len(rep.Errors) != 1 || rep.Errors[0].Row != 5 || rep.Errors[0].Column != "ts" {
		t.Fatalf("report %+v", rep)
	}
	if _, err := im.Import(ctx, table(t, "sig.csv", data)); err != nil {
		t.Fatal(err)
	}
	zs, _ := rdb.ZRangeWithScores(ctx, SignalsKey("s1"), 0, -1).Result()
	if len(zs) != 2 {
		t.Fatalf("s1 has %d signals after two imports, want 2", len(zs))
	}
	want := time.Date(2025, 3, 3, 4, 5, 0, 0, time.UTC).UnixMilli()
	if int64(zs[0].Score) != want || !strings.Contains(zs[0].Member.(string), `"value":18.5`) {
		t.Fatalf("first signal %v, want at %d with value 18.5", zs[0], want)
	}
	if n := len(readTopic(t, b.Addr(), TopicSignals, 1)); n != 6 {
		t.Fatalf("%d signal events, want 6 (3 rows × 2 imports, same ids)", n)
	}
}

func createTopic(t *testing.T, addr, topic string) {
	t.Helper()
	conn, err := kafka.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctl, err := conn.Controller()
	if err != nil {
		t.Fatal(err)
	}
	cc, err := kafka.Dial("tcp", net.JoinHostPort(ctl.Host, strconv.Itoa(ctl.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if err := cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
}

// xlsxFile writes a workbook the way Excel lays one out: shared strings,
// a relationship to the sheet, numbers as <v>, an inline string, a gap.
func xlsxFile(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	put := func(name, body string) {
		w, _ := z.Create(name)
		_, _ = w.Write([]byte(body))
	}
	put("[Content_Types].xml", `<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`)
	put("xl/workbook.xml", `<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="成绩" sheetId="1" r:id="rId7"/></sheets></workbook>`)
	put("xl/_rels/workbook.xml.rels", `<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId7" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/grades.xml"/></Relationships>`)
	put("xl/sharedStrings.xml", `<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>student</t></si><si><t>course</t></si><si><t>term</t></si><si><t>score</t></si><si><r><t>s</t></r><r><t>1</t></r></si><si><t>2025S</t></si></sst>`)
	put("xl/worksheets/grades.xml", `<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`+
		`<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c><c r="D1" t="s"><v>3</v></c></row>`+
		`<row r="3"><c r="A3" t="s"><v>4</v></c><c r="B3" t="inlineStr"><is><t>MATH101</t></is></c><c r="C3" t="s"><v>5</v></c><c r="D3"><v>87.5</v></c></row>`+
		`<row r="4"><c r="A4" t="s"><v>4</v></c><c r="C4" t="s"><v>5</v></c><c r="D4"><v>101</v></c></row>`+
		`</sheetData></worksheet>`)
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImportXLSXKeepsSpreadsheetRowNumbers(t *testing.T) {
	tb, err := ReadTable("grades.xlsx", bytes.NewReader(xlsxFile(t)))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := NewImporter(ImportConfig{Kind: KindGrades, DryRun: true}, nil, nil, nil)
	rep, err := im.Import(context.Background(), tb)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Valid != 1 || len(rep.Errors) != 2 {
		t.Fatalf("report %+v, want row 3 valid and row 4 bad twice (course, score)", rep)
	}
	for _, e := range rep.Errors {
		if e.Row != 4 || (e.Column != "course" && e.Column != "score") {
			t.Fatalf("error %+v", e)
		}
	}
}

func TestReadTableRejectsBadFiles(t *testing.T) {
	for _, c := range []struct{ name, data string }{
		{"x.pdf", "student\ns1\n"},
		{"x.xlsx", "not a zip"},
		{"x.csv", ""},
		{"x.csv", "a,a\n1,2\n"},
		{"x.csv", "a,\"b\n1,2\n"},
	} {
		if _, err := ReadTable(c.name, strings.NewReader(c.data)); !errors.Is(err, ErrBadFile) {
			t.Errorf("ReadTable(%s, %q) = %v, want ErrBadFile", c.name, c.data, err)
		}
	}
}

func FuzzImportCSV(f *testing.F) {
	f.Add([]byte(rosterCSV))
	f.Add([]byte("student,course,term,score,passed,date\ns1,C1,T1,50,yes,2025-01-02\n"))
	f.Add([]byte("student;kind;ts;value\ns1;card;2025-03-03 12:00;-4\n"))
	f.Add([]byte("id,role,email,webhook\nc1,counsellor,a@b.c,https://x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParseCSV(data)
		if err != nil {
			return
		}
		tb, err := tableOf(recs)
		if err != nil {
			return
		}
		for _, k := range Kinds {
			im, err := NewImporter(ImportConfig{Kind: k, DryRun: true}, nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			p, rep, err := im.Check(tb)
			if err != nil {
				if !errors.Is(err, ErrBadFile) {
					t.Fatalf("%s: file error %v does not wrap ErrBadFile", k, err)
				}
				continue
			}
			if rep.Valid+len(rowsWithErrors(rep.Errors)) != rep.Rows {
				t.Fatalf("%s: %d valid + %d bad rows != %d rows", k, rep.Valid, len(rowsWithErrors(rep.Errors)), rep.Rows)
			}
			for _, e := range p.events {
				if err := e.Validate(); err != nil {
					t.Fatalf("%s: accepted row gives an invalid event: %v", k, err)
				}
			}
		}
	})
}

func rowsWithErrors(errs []RowError) map[int]bool {
	m := map[int]bool{}
	for _, e := range errs {
		m[e.Row] = true
	}
	return m
}

// newProducer builds a producer closed with the test, so goleak sees no
// connections left behind.
func newProducer(t *testing.T, addr string, cfg ...stream.ProducerConfig) *stream.Producer {
	t.Helper()
	c := stream.ProducerConfig{}
	if len(cfg) > 0 {
		c = cfg[0]
	}
	c.Brokers = []string{addr}
	p, err := stream.NewProducer(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// FuzzParseXLSX minimises new inputs slowly (a zip is re-checked for every
// byte dropped); run it with -fuzzminimizetime=0s for many execs per second.
func FuzzParseXLSX(f *testing.F) {
	f.Add(xlsxFile(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParseXLSX(data)
		if err != nil {
			if !errors.Is(err, ErrBadFile) {
				t.Fatalf("error %v does not wrap ErrBadFile", err)
			}
			return
		}
		for _, r := range recs {
			if len(r) > 16384 {
				t.Fatalf("row of %d cells", len(r))
			}
		}
	})
}

// TestImportRosterMakesTheNextScoreCheckTheConsentGate: a score skips the
// consent gate while its live hash's version is one a checked score wrote
// (state/gate.go), so a roster import that turns under_14 on marks it.
func TestImportRosterMakesTheNextScoreCheckTheConsentGate(t *testing.T) {
	cases := []struct {
		name, csv, want string
	}{
		{"under_14 turns on", "student,minor,under_14\nk1,1,1\nk2,0,0\n", "!.v1"},
		{"under_14 stays off", "student,minor,under_14\nk1,0,0\nk2,1,1\n", ".v1"},
		{"no under_14 column", "student,class\nk1,C1\n", ".v1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			rdb := redisClient(t)
			if err := rdb.HSet(ctx, state.LiveKey("k1"), "v", ".v1").Err(); err != nil {
				t.Fatal(err)
			}
			im, err := NewImporter(ImportConfig{Kind: KindRoster}, rdb, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := im.Import(ctx, table(t, "roster.csv", c.csv)); err != nil {
				t.Fatal(err)
			}
			if got, _ := rdb.HGet(ctx, state.LiveKey("k1"), "v").Result(); got != c.want {
				t.Fatalf("live version = %q, want %q", got, c.want)
			}
			if n, _ := rdb.Exists(ctx, state.LiveKey("k2")).Result(); n != 0 {
				t.Fatal("the mark created a live hash")
			}
		})
	}
}
