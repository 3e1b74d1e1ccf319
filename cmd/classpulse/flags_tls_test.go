package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/ingest"
	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// infraFrom parses the shared infra flags of a command from args and the
// CLASSPULSE_* environment, as the commands do.
func infraFrom(t *testing.T, args ...string) *infra {
	t.Helper()
	fs := newFlagSet("test", "")
	var in infra
	in.register(fs, true, true)
	if err := config.Parse(fs, args); err != nil {
		t.Fatal(err)
	}
	return &in
}

// TestRedisClientSpeaksTLSWithTheGivenCA runs a real redis-server with a
// TLS port (Debian's redis-server is built with TLS) and a certificate from
// a CA made in the test: --redis-tls-ca connects, and plain TCP to the TLS
// port or a client that does not trust the CA fails.
func TestRedisClientSpeaksTLSWithTheGivenCA(t *testing.T) {
	addr, files := testenv.StartRedisTLS(t, "optional")
	ping := func(in *infra) error {
		c := in.redisClient()
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	}
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"trusted CA", []string{"--redis", addr, "--redis-tls-ca", files.CA}, true},
		{"trusted CA and a client certificate", []string{"--redis", addr, "--redis-tls-ca", files.CA, "--redis-tls-cert", files.Cert, "--redis-tls-key", files.Key}, true},
		{"plain TCP to the TLS port", []string{"--redis", addr}, false},
		{"system roots only", []string{"--redis", addr, "--redis-tls"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ping(infraFrom(t, tc.args...)); (err == nil) != tc.ok {
				t.Fatalf("PING: %v, want ok=%v", err, tc.ok)
			}
		})
	}
	bad := infraFrom(t, "--redis", addr, "--redis-tls-ca", files.CA+".gone")
	if err := bad.checkTLS(); err == nil || !strings.Contains(err.Error(), "redis tls ca") {
		t.Fatalf("checkTLS with a missing CA file: %v", err)
	}
	if err := ping(bad); err == nil || !strings.Contains(err.Error(), "tls ca") {
		t.Fatalf("a client built with a missing CA file: %v, want the file error", err)
	}
}

// TestKafkaProducerSpeaksTLSWithTheGivenCA publishes to a Kafka-protocol
// broker that only accepts TLS, through --kafka-tls-ca.
func TestKafkaProducerSpeaksTLSWithTheGivenCA(t *testing.T) {
	files := testenv.NewTLS(t)
	addr := testenv.StartTLSBroker(t, 1, files).Addr()
	audit := func() stream.Event {
		return &stream.Audit{Header: stream.NewHeader("s1", time.Now()), Actor: "ops", Action: stream.AuditReadStudent}
	}
	publish := func(in *infra) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tc, err := in.kafkaClientTLS(ctx)
		if err != nil {
			return err
		}
		p, err := stream.NewProducer(stream.ProducerConfig{Brokers: in.brokers, TLS: tc, WriteTimeout: 3 * time.Second}, nil)
		if err != nil {
			return err
		}
		defer p.Close()
		return p.Publish(ctx, audit())
	}
	if err := publish(infraFrom(t, "--brokers", addr, "--kafka-tls-ca", files.CA)); err != nil {
		t.Fatalf("publish over TLS: %v", err)
	}
	t.Setenv("CLASSPULSE_KAFKA_TLS_CA", files.CA)
	if err := publish(infraFrom(t, "--brokers", addr)); err != nil {
		t.Fatalf("publish over TLS with CLASSPULSE_KAFKA_TLS_CA: %v", err)
	}
	os.Unsetenv("CLASSPULSE_KAFKA_TLS_CA")
	if err := publish(infraFrom(t, "--brokers", addr)); err == nil {
		t.Fatal("a plain-TCP producer published to the TLS-only broker")
	}
	if _, err := infraFrom(t, "--kafka-tls-cert", files.Cert).kafkaClientTLS(context.Background()); err == nil || !strings.Contains(err.Error(), "key") {
		t.Fatalf("a client certificate without its key: %v", err)
	}
}

// TestCommandsRefuseABrokerTheirKafkaCADoesNotSign starts each Kafka
// command against a TLS-only broker whose certificate another CA signed:
// each stops at once with the verification error, rather than retrying
// quietly; a broker that is not there yet is no error.
func TestCommandsRefuseABrokerTheirKafkaCADoesNotSign(t *testing.T) {
	files := testenv.NewTLS(t)
	other := testenv.NewTLS(t)
	addr := testenv.StartTLSBroker(t, 1, files).Addr()
	r := testenv.StartRedis(t)
	common := []string{"--brokers", addr, "--kafka-tls-ca", other.CA, "--log-level", "error"}
	for _, tc := range []struct {
		name string
		run  func(context.Context, []string) error
		args []string
	}{
		{"processor", runProcessor, []string{"--redis", r.Addr, "--metrics-addr", "127.0.0.1:0"}},
		{"dashboard", runDashboard, []string{"--redis", r.Addr, "--addr", "127.0.0.1:0"}},
		{"simulate", runSimulate, []string{"--spool-dir", t.TempDir(), "--for", "1m"}},
		{"xapi", runXAPI, []string{"--listen", "127.0.0.1:0", "--xapi-sources", "moodle=0123456789abcdef0123"}},
		{"followup", runFollowup, []string{"--redis", r.Addr, "--listen", ""}},
		{"notify", runNotify, []string{"--redis", r.Addr, "--listen", "", "--routes", "../../notify/testdata/routes.json"}},
		{"erase", func(ctx context.Context, args []string) error { return eraseCmd(ctx, args, io.Discard) }, []string{"--redis", r.Addr, "--student", "stu-A"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := tc.run(ctx, append(append([]string{}, common...), tc.args...))
			if ctx.Err() != nil {
				t.Fatalf("%s did not stop by itself on a wrong CA (err %v)", tc.name, err)
			}
			if err == nil || !strings.Contains(err.Error(), "kafka tls handshake with "+addr) || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
				t.Fatalf("%s with a wrong Kafka CA: %v", tc.name, err)
			}
		})
	}
	if _, err := infraFrom(t, "--brokers", "127.0.0.1:1", "--kafka-tls-ca", other.CA).kafkaClientTLS(context.Background()); err != nil {
		t.Fatalf("a broker that is away failed the TLS check: %v", err)
	}
}

// TestProcessorCommandOverATLSOnlyBroker runs `classpulse processor
// --kafka-tls-ca` against a TLS-only broker and a real redis-server: a
// score published over TLS lands in the student's state and comes out as
// a tile, read back over TLS; then --rebuild reads the topics back over
// TLS into a wiped Redis.
func TestProcessorCommandOverATLSOnlyBroker(t *testing.T) {
	files := testenv.NewTLS(t)
	addr := testenv.StartTLSBroker(t, 2, files).Addr()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	args := []string{"--brokers", addr, "--kafka-tls-ca", files.CA, "--redis", r.Addr, "--metrics-addr", "127.0.0.1:0", "--log-level", "warn"}
	start := func(extra ...string) func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- runProcessor(ctx, append(append([]string{}, args...), extra...)) }()
		return func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("processor: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("processor did not stop")
			}
		}
	}
	stop := start()
	in := infraFrom(t, "--brokers", addr, "--kafka-tls-ca", files.CA)
	ctx := context.Background()
	tc, err := in.kafkaClientTLS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: in.brokers, TLS: tc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	sc := &stream.Score{Header: stream.NewHeader("tls-stu", time.Now()), Session: "S-tls", Course: "calculus",
		WindowMS: 1000, Frames: 10, FaceRatio: 1, Attention: 0.7, Model: "t"}
	if err := prod.Publish(ctx, sc); err != nil {
		t.Fatal(err)
	}
	stateKeys := func() []string {
		keys, _ := rdb.Keys(ctx, state.StudentTag("tls-stu")+"*").Result()
		return keys
	}
	testenv.WaitFor(t, 30*time.Second, "the score applied to Redis", func() bool { return len(stateKeys()) > 0 })

	tiles := make(chan *stream.Tile, 16)
	cctx, ccancel := context.WithCancel(ctx)
	cons, err := stream.NewConsumer(stream.ConsumerConfig{Brokers: in.brokers, TLS: tc, Group: "tls-test-tiles", Topics: []string{stream.TopicTiles}},
		func(_ context.Context, batch []stream.Message) error {
			for _, m := range batch {
				var tile stream.Tile
				if err := stream.DecodeInto(m.Value, &tile); err == nil {
					tiles <- &tile
				}
			}
			return nil
		}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cdone := make(chan error, 1)
	go func() { cdone <- cons.Run(cctx) }()
	select {
	case tile := <-tiles:
		if tile.Student != "tls-stu" || tile.Session != "S-tls" || tile.Attention != 0.7 {
			t.Fatalf("tile %+v, want tls-stu in S-tls at 0.7", tile)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no tile came out over TLS")
	}
	ccancel()
	if err := <-cdone; err != nil {
		t.Fatal(err)
	}
	stop()

	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	stop = start("--rebuild", "--group", "tls-rebuilt")
	testenv.WaitFor(t, 30*time.Second, "the state rebuilt from the topics over TLS", func() bool { return len(stateKeys()) > 0 })
	stop()
}

// TestDashboardCommandProjectsTheQueueOverTLS runs `classpulse dashboard
// --kafka-tls-ca` with its queue projector (no --no-queue) against a
// TLS-only broker: a warning published over TLS reaches the queue in Redis.
func TestDashboardCommandProjectsTheQueueOverTLS(t *testing.T) {
	files := testenv.NewTLS(t)
	addr := testenv.StartTLSBroker(t, 1, files).Addr()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runDashboard(ctx, []string{"--brokers", addr, "--kafka-tls-ca", files.CA, "--redis", r.Addr, "--addr", "127.0.0.1:0", "--log-level", "warn"})
	}()
	in := infraFrom(t, "--brokers", addr, "--kafka-tls-ca", files.CA)
	tc, err := in.kafkaClientTLS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: in.brokers, TLS: tc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	w := &stream.Warning{
		Header: stream.NewHeader("tls-stu", time.Now()), Category: stream.CategoryGrade, Level: stream.LevelYellow, Rule: "grade_low",
		Course: "C1", Reason: "a failed course", Evidence: map[string]float64{"failed": 1}, State: stream.StateRaised,
	}
	w.Ref = w.ID
	if err := prod.Publish(ctx, w); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the warning projected into the queue over TLS", func() bool {
		_, err := queue.NewStore(rdb).Get(ctx, w.Ref)
		return err == nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dashboard: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dashboard did not stop")
	}
}

// TestXAPICommandServesHTTPS runs `classpulse xapi` with --tls-cert and
// --tls-key and publishing over --kafka-tls-ca to a TLS-only broker: a
// client trusting the CA posts a statement over HTTPS and it is accepted;
// plain HTTP to the port gets no answer.
func TestXAPICommandServesHTTPS(t *testing.T) {
	files := testenv.NewTLS(t)
	broker := testenv.StartTLSBroker(t, 1, files).Addr()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	secret := "moodle-secret-0123456789"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runXAPI(ctx, []string{"--brokers", broker, "--kafka-tls-ca", files.CA, "--listen", addr, "--xapi-sources", "moodle=" + secret,
			"--tls-cert", files.Cert, "--tls-key", files.Key, "--log-level", "warn"})
	}()
	pem, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	stmt := `{"id":"st-tls","actor":{"account":{"homePage":"https://lms","name":"s1"}},` +
		`"verb":{"id":"http://adlnet.gov/expapi/verbs/attempted"},` +
		`"object":{"id":"https://lms/quiz/1","definition":{"type":"http://adlnet.gov/expapi/activities/assessment"}},` +
		`"context":{"contextActivities":{"parent":{"id":"https://lms/course/view.php?id=LAW1","definition":{"type":"http://adlnet.gov/expapi/activities/course"}}}}}`
	var resp *http.Response
	testenv.WaitFor(t, 10*time.Second, "xapi endpoint answering over HTTPS", func() bool {
		req, _ := http.NewRequest(http.MethodPost, "https://"+addr+ingest.XAPIPath, strings.NewReader(stmt))
		req.SetBasicAuth("moodle", ingest.SourceToken("moodle", secret))
		var err error
		resp, err = client.Do(req)
		return err == nil
	})
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"accepted":1`) {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if r, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + addr + "/healthz"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Fatal("plain HTTP was served on the TLS port")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("xapi returned %v after cancel", err)
	}
}
