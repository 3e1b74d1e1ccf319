package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/classpulse/classpulse/dashboard"
	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/helploop"
	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/simulate"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/processor"
	"github.com/classpulse/classpulse/stream/state"
)

const demoSummary = "run everything in one process: embedded Kafka-protocol broker and Redis, processor, dashboard, simulated class"

func init() { register("demo", demoSummary, runDemo) }

func runDemo(ctx context.Context, args []string) error {
	fs := newFlagSet("demo", demoSummary)
	var in infra
	in.register(fs, false, false)
	brokerListen := fs.String("broker-listen", "127.0.0.1:9092", "listen address of the embedded Kafka-protocol broker (port 0 picks a free one)")
	redisListen := fs.String("redis-listen", "127.0.0.1:0", "listen address of the embedded Redis-protocol server")
	partitions := fs.Int("partitions", 8, "partitions per topic on the embedded broker")
	retention := fs.Duration("broker-retention", time.Hour, "how long the embedded broker keeps a record; it keeps its log in memory, so a demo left running stays bounded (0: keep everything)")
	var dcfg dashboard.Config
	fs.StringVar(&dcfg.Addr, "addr", "127.0.0.1:8080", "dashboard listen address")
	var scfg simulate.Config
	fs.IntVar(&scfg.Students, "students", 40, "students in the simulated class")
	fs.StringVar(&scfg.Session, "session", "demo-class", "session id of the simulated class")
	fs.DurationVar(&scfg.Warmup, "warmup", 2*time.Minute, "session history the simulated class back-fills at start, so live signals show at once")
	dur := fs.Duration("for", 0, "stop after this long and exit 0 (default: until interrupted)")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	logger, err := in.logger()
	if err != nil {
		return err
	}
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}

	broker, err := startDemoBroker(stream.EmbeddedConfig{Listen: *brokerListen, Partitions: *partitions, Retention: *retention}, logger)
	if err != nil {
		return err
	}
	defer broker.Close()
	mem, err := state.StartEmbeddedRedis(*redisListen, logger)
	if err != nil {
		return err
	}
	defer mem.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mem.Addr()})
	defer rdb.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	brokers := []string{broker.Addr()}
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: brokers}, logger)
	if err != nil {
		return err
	}
	defer prod.Close()
	store, err := state.New(rdb, state.Config{})
	if err != nil {
		return err
	}
	defer store.Close()
	policy, err := loadPolicy("")
	if err != nil {
		return err
	}
	proc, err := processor.New(processor.Config{Brokers: brokers}, store, policy, prod, logger, reg)
	if err != nil {
		return err
	}
	dcfg.Brokers = brokers
	students, err := dashboard.NewStateReader(rdb, state.Config{}, policy, nil)
	if err != nil {
		return err
	}
	dash, err := dashboard.New(dcfg, rdb, prod, logger, reg, dashboard.WithStudentReader(students))
	if err != nil {
		return err
	}
	// Help-plan follow-up in-process (classpulse followup in production).
	reader, err := state.NewReader(rdb, state.Config{})
	if err != nil {
		return err
	}
	followup, err := helploop.New(helploop.Config{}, rdb, reader, policy, prod, logger, reg)
	if err != nil {
		return err
	}
	class, err := simulate.New(scfg, prod, logger)
	if err != nil {
		return err
	}
	// The class roster reaches the dashboard, so that the students without
	// a camera show on the grid as "not captured" tiles.
	roster := make([]queue.RosterEntry, 0, len(class.Students()))
	for _, st := range class.Students() {
		roster = append(roster, queue.RosterEntry{Student: st.ID, Class: scfg.Session})
	}
	if err := queue.NewStore(rdb).SetRoster(ctx, roster); err != nil {
		return fmt.Errorf("demo roster: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return mem.Run(gctx) })
	g.Go(func() error { return proc.Run(gctx) })
	g.Go(func() error { return dash.Run(gctx) })
	g.Go(func() error { return followup.Run(gctx) })
	g.Go(func() error {
		select {
		case <-dash.Started():
		case <-gctx.Done():
			return nil
		}
		tok, err := dash.IssueToken(dashboard.Claims{Subject: "demo-admin", Role: dashboard.RoleAdmin, Name: "Demo admin",
			Expires: time.Now().Add(24 * time.Hour).Unix()})
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "\n  classpulse demo is running.\n  Open the class dashboard: %s\n  (Kafka-protocol broker %s, Redis-protocol server %s)\n\n", dash.SignInURL(tok)+"&next="+url.QueryEscape("/?class="+scfg.Session), broker.Addr(), mem.Addr())
		return class.Run(gctx)
	})
	err = g.Wait()
	logger.Info("demo stopped", "events_simulated", class.Sent())
	return err
}

// startDemoBroker starts the embedded broker; when the default port is
// taken it falls back to a free port rather than failing.
func startDemoBroker(cfg stream.EmbeddedConfig, logger *slog.Logger) (*stream.EmbeddedBroker, error) {
	b, err := stream.StartEmbeddedBroker(cfg, logger)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(cfg.Listen)
	logger.Warn("broker port busy; picking a free port", "component", "broker", "wanted", cfg.Listen)
	cfg.Listen = net.JoinHostPort(host, "0")
	return stream.StartEmbeddedBroker(cfg, logger)
}
