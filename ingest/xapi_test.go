package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
)

const moodleSecret = "0123456789abcdef0123456789abcdef"

func stmt(verb, typ, extra string) string {
	return `{"id":"` + verb + `-1","actor":{"account":{"homePage":"https://lms","name":"s1"}},` +
		`"verb":{"id":"http://adlnet.gov/expapi/verbs/` + verb + `"},` +
		`"object":{"id":"https://lms/mod/x/1","definition":{"type":"http://adlnet.gov/expapi/activities/` + typ + `"}},` +
		`"context":{"contextActivities":{"grouping":[{"id":"https://lms/course/view.php?id=MATH101","definition":{"type":"http://adlnet.gov/expapi/activities/course"}}]}},` +
		`"timestamp":"2025-03-03T09:00:00Z"` + extra + `}`
}

func TestParseDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
		bad  bool
	}{
		{in: "PT30S", want: 30},
		{in: "PT1H30M", want: 5400},
		{in: "PT45.5S", want: 45.5},
		{in: "P1DT1S", want: 86401},
		{in: "P1W", want: 604800},
		{in: "PT0,5S", want: 0.5},
		{in: "P1M", bad: true},
		{in: "P1Y", bad: true},
		{in: "PT", bad: true},
		{in: "P", bad: true},
		{in: "30S", bad: true},
		{in: "PT1S1S", bad: true},
		{in: "PT1H", want: 3600},
		{in: "PTS", bad: true},
		{in: "PT1X", bad: true},
	} {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseDuration(c.in)
			if c.bad {
				if err == nil {
					t.Fatalf("ParseDuration(%q) = %v, want an error", c.in, got)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", c.in, got, err, c.want)
			}
		})
	}
}

func TestMappingMapsVerbsAndTypesOntoKinds(t *testing.T) {
	m := DefaultMapping()
	now := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name      string
		body      string
		wantKinds []string
		wantCode  string
	}{
		{"quiz attempt", stmt("attempted", "assessment", ""), []string{"quiz"}, ""},
		{"quiz with duration also counts study time", stmt("completed", "assessment", `,"result":{"duration":"PT10M"}`), []string{"quiz", "study"}, ""},
		{"terminated with duration is study", stmt("terminated", "lesson", `,"result":{"duration":"PT1H"}`), []string{"study"}, ""},
		{"terminated without duration is refused", stmt("terminated", "lesson", ""), nil, CodeDuration},
		{"file download", stmt("downloaded", "file", ""), []string{"file_download"}, ""},
		{"video download", stmt("downloaded", "video", ""), []string{"video_download"}, ""},
		{"link", stmt("experienced", "link", ""), []string{"external_link"}, ""},
		{"unknown pair", stmt("mastered", "simulation", ""), nil, CodeVerb},
		{"calendar duration refused", stmt("completed", "assessment", `,"result":{"duration":"P1M"}`), nil, CodeDuration},
		{"over a day refused", stmt("completed", "assessment", `,"result":{"duration":"P2D"}`), nil, CodeDuration},
		{"voiding", strings.Replace(stmt("voided", "file", ""), "adlnet.gov/expapi/verbs/voided", "adlnet.gov/expapi/verbs/voided", 1), nil, CodeVoided},
		{"no course", strings.Replace(stmt("attempted", "assessment", ""), "activities/course", "activities/group", 1), nil, CodeCourse},
		{"bad student", strings.Replace(stmt("attempted", "assessment", ""), `"name":"s1"`, `"name":"{s1}"`, 1), nil, CodeActor},
		{"mbox student", strings.Replace(stmt("attempted", "assessment", ""), `"account":{"homePage":"https://lms","name":"s1"}`, `"mbox":"mailto:s1@school.edu"`, 1), []string{"quiz"}, ""},
		{"bad timestamp", strings.Replace(stmt("attempted", "assessment", ""), "2025-03-03T09:00:00Z", "yesterday", 1), nil, CodeTimestamp},
	} {
		t.Run(c.name, func(t *testing.T) {
			var st Statement
			if err := json.Unmarshal([]byte(c.body), &st); err != nil {
				t.Fatal(err)
			}
			clicks, err := m.Map("moodle", &st, now)
			if c.wantCode != "" {
				var se *StatementError
				if !errors.As(err, &se) || se.Code != c.wantCode || !errors.Is(err, ErrUnmappable) {
					t.Fatalf("err = %v, want code %s", err, c.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, cl := range clicks {
				kinds = append(kinds, cl.Kind)
				if cl.Student != "s1" || cl.Course != "MATH101" || cl.XAPI != "moodle:"+st.ID {
					t.Errorf("click %+v: wrong student, course or xapi ref", cl)
				}
			}
			if strings.Join(kinds, ",") != strings.Join(c.wantKinds, ",") {
				t.Fatalf("kinds %v, want %v", kinds, c.wantKinds)
			}
		})
	}
}

func TestMappingIDsAreDeterministic(t *testing.T) {
	var st Statement
	_ = json.Unmarshal([]byte(stmt("attempted", "assessment", "")), &st)
	a, err := DefaultMapping().Map("moodle", &st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := DefaultMapping().Map("moodle", &st, time.Now())
	c, _ := DefaultMapping().Map("canvas", &st, time.Now())
	if a[0].ID != b[0].ID {
		t.Fatalf("same statement, different ids %s %s", a[0].ID, b[0].ID)
	}
	if a[0].ID == c[0].ID {
		t.Fatal("different sources gave the same id")
	}
}

func TestMappingValidateRejectsUnknownKind(t *testing.T) {
	m := &Mapping{Rules: []MappingRule{{Verb: "*", Type: "*", Kind: "napping"}}}
	m.applyDefaults()
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "napping") {
		t.Fatalf("Validate = %v, want an error naming the kind", err)
	}
}

// newXAPI starts a broker, a producer and the handler.
func newXAPI(t *testing.T) (*XAPIHandler, *stream.EmbeddedBroker, *prometheus.Registry) {
	t.Helper()
	b := testenv.StartBroker(t, 2)
	p := newProducer(t, b.Addr())
	reg := prometheus.NewRegistry()
	h, err := NewXAPIHandler(XAPIConfig{Sources: map[string]string{"moodle": moodleSecret}}, p, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	return h, b, reg
}

func readClicks(t *testing.T, addr string, n int) []stream.Click {
	t.Helper()
	var out []stream.Click
	for part := 0; part < 2; part++ {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: stream.TopicClicks, Partition: part, MaxWait: 50 * time.Millisecond})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			m, err := r.ReadMessage(ctx)
			cancel()
			if err != nil {
				break
			}
			e, err := stream.Decode(stream.TopicClicks, m.Value)
			if err != nil {
				t.Fatalf("click on the topic does not decode: %v", err)
			}
			out = append(out, *e.(*stream.Click))
		}
		r.Close()
	}
	if len(out) != n {
		t.Fatalf("%d clicks on %s, want %d", len(out), stream.TopicClicks, n)
	}
	return out
}

func post(t *testing.T, url, auth, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+XAPIPath, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp, buf.Bytes()
}

func TestXAPIHandlerPublishesBatchAndExplainsRejections(t *testing.T) {
	h, b, reg := newXAPI(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	batch := "[" + stmt("attempted", "assessment", `,"result":{"duration":"PT5M"}`) + "," +
		stmt("mastered", "simulation", "") + "," + `{"verb":"not an object"}` + "," +
		stmt("downloaded", "file", "") + "]"
	resp, body := post(t, srv.URL, "Bearer "+SourceToken("moodle", moodleSecret), batch)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var got XAPIResponse
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Accepted != 2 || got.Rejected != 2 || len(got.Statements) != 4 {
		t.Fatalf("answer %s: want 2 accepted, 2 rejected", body)
	}
	if got.Statements[1].Code != CodeVerb || got.Statements[2].Code != CodeMalformed || got.Statements[2].Reason == "" {
		t.Fatalf("rejections not explained per index: %s", body)
	}
	// Accepted means on the broker already: read without waiting.
	clicks := readClicks(t, b.Addr(), 3)
	kinds := map[string]float64{}
	for _, c := range clicks {
		kinds[c.Kind] += c.DurationS
		if c.Student != "s1" || c.Course != "MATH101" {
			t.Errorf("click %+v", c)
		}
	}
	if _, ok := kinds["quiz"]; !ok || kinds["study"] != 300 || len(kinds) != 3 {
		t.Fatalf("kinds on the topic %v, want quiz, study 300 s, file_download", kinds)
	}
	if v := testutil.ToFloat64(h.rejected.WithLabelValues("moodle", CodeVerb)); v != 1 {
		t.Fatalf("unmapped counter %v, want 1", v)
	}
	if v := testutil.ToFloat64(h.statements.WithLabelValues("moodle", "accepted")); v != 2 {
		t.Fatalf("accepted counter %v, want 2", v)
	}
	if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
		t.Fatalf("metric lint: %v %v", err, probs)
	}
}

func TestXAPIHandlerAuthenticatesPerSource(t *testing.T) {
	h, b, _ := newXAPI(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	one := stmt("attempted", "assessment", "")
	basic := func(user, pass string) string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return r.Header.Get("Authorization")
	}
	for _, c := range []struct {
		name string
		auth string
		want int
	}{
		{"no credential", "", 401},
		{"wrong secret", "Bearer " + SourceToken("moodle", "another-secret-of-length"), 401},
		{"unknown source", "Bearer " + SourceToken("canvas", moodleSecret), 401},
		{"token of another source name", "Bearer moodle." + sourceMAC("canvas", moodleSecret), 401},
		{"bearer token", "Bearer " + SourceToken("moodle", moodleSecret), 200},
		{"basic auth with token", basic("moodle", SourceToken("moodle", moodleSecret)), 200},
		{"basic auth with mac only", basic("moodle", sourceMAC("moodle", moodleSecret)), 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := post(t, srv.URL, c.auth, one)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.want, body)
			}
		})
	}
	// Three accepted posts of one statement: the same deterministic id each time.
	clicks := readClicks(t, b.Addr(), 3)
	if clicks[0].ID != clicks[1].ID || clicks[1].ID != clicks[2].ID {
		t.Fatalf("a resent statement got new ids: %s %s %s", clicks[0].ID, clicks[1].ID, clicks[2].ID)
	}
	if v := testutil.ToFloat64(h.authFail); v != 4 {
		t.Fatalf("auth failures %v, want 4", v)
	}
}

func TestXAPIHandlerRefusesBadRequests(t *testing.T) {
	h, _, _ := newXAPI(t)
	h.cfg.MaxStatements = 2
	h.cfg.MaxBodyBytes = 4096
	srv := httptest.NewServer(h)
	defer srv.Close()
	auth := "Bearer " + SourceToken("moodle", moodleSecret)
	one := stmt("attempted", "assessment", "")
	for _, c := range []struct {
		name, body string
		want       int
	}{
		{"not json", "hello", 400},
		{"empty", "", 400},
		{"broken array", "[" + one, 400},
		{"too many statements", "[" + one + "," + one + "," + one + "]", 413},
		{"too large", "[" + strings.Repeat(one+",", 20) + one + "]", 413},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := post(t, srv.URL, auth, c.body)
			if resp.StatusCode != c.want || !bytes.Contains(body, []byte(`"reason"`)) {
				t.Fatalf("status %d, want %d with a reason: %s", resp.StatusCode, c.want, body)
			}
		})
	}
}

func TestXAPIHandlerAnswers503WhenTheBrokerIsDown(t *testing.T) {
	b := testenv.StartBroker(t, 1)
	p := newProducer(t, b.Addr(), stream.ProducerConfig{WriteTimeout: 300 * time.Millisecond})
	h, err := NewXAPIHandler(XAPIConfig{Sources: map[string]string{"moodle": moodleSecret}, PublishTimeout: time.Second}, p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, body := post(t, srv.URL, "Bearer "+SourceToken("moodle", moodleSecret), stmt("attempted", "assessment", ""))
	if resp.StatusCode != 503 {
		t.Fatalf("status %d, want 503 when nothing was acknowledged: %s", resp.StatusCode, body)
	}
}

func FuzzDecodeStatements(f *testing.F) {
	f.Add([]byte(stmt("attempted", "assessment", `,"result":{"duration":"PT5M"}`)))
	f.Add([]byte("[" + stmt("terminated", "lesson", `,"result":{"duration":"P1DT2H"}`) + "]"))
	f.Add([]byte(`[{"context":{"contextActivities":{"parent":{"id":"x","definition":{"type":"course"}}}}}]`))
	f.Add([]byte(`{"verb":1}`))
	m := DefaultMapping()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		stmts, errs, err := DecodeStatements(body)
		if err != nil {
			if !errors.Is(err, ErrUnmappable) {
				t.Fatalf("body error %v does not wrap ErrUnmappable", err)
			}
			return
		}
		if len(errs) != len(stmts) {
			t.Fatalf("%d errors for %d statements", len(errs), len(stmts))
		}
		for i := range stmts {
			if errs[i] != nil {
				continue
			}
			clicks, err := m.Map("fuzz", &stmts[i], now)
			if err != nil {
				if !errors.Is(err, ErrUnmappable) {
					t.Fatalf("map error %v does not wrap ErrUnmappable", err)
				}
				continue
			}
			for _, c := range clicks {
				if err := c.Validate(); err != nil {
					t.Fatalf("mapped click is invalid: %v", err)
				}
			}
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"PT1H30M", "P1DT0.5S", "P1W", "PT", "P1M"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && (d < 0 || d != d) {
			t.Fatalf("ParseDuration(%q) = %v", s, d)
		}
	})
}
