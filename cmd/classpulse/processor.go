package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/internal/ops"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/processor"
	"github.com/classpulse/classpulse/stream/state"
)

const processorSummary = "run the stream processor: input topics → per-student state in Redis → warnings and tiles"

func init() { register("processor", processorSummary, runProcessor) }

func runProcessor(ctx context.Context, args []string) error {
	fs := newFlagSet("processor", processorSummary)
	var in infra
	in.register(fs, true, true)
	var cfg processor.Config
	var scfg state.Config
	policyPath := fs.String("policy", "", "warning policy YAML file (default: the embedded default policy); SIGHUP reloads it")
	metricsAddr := fs.String("metrics-addr", ":9090", "listen address for /metrics, /healthz and /readyz")
	fs.StringVar(&cfg.Group, "group", "classpulse-processor", "consumer group of the per-student stage")
	fs.IntVar(&cfg.Members, "members", 1, "group members this process runs (each owns its own partitions; 2 overlaps Go work with Redis round trips)")
	fs.IntVar(&cfg.MaxBatch, "max-batch", 500, "most messages applied in one pipelined round")
	fs.IntVar(&cfg.Parallel, "parallel", 2, "goroutines decoding a batch, and groups of its students applied to Redis concurrently, each on its own ordered Redis connection (overlaps Go work with Redis round trips)")
	fs.StringVar(&cfg.Jurisdiction, "jurisdiction", "default", "legal profile: eu refuses any event carrying emotion inference (to the DLQ)")
	fs.BoolVar(&cfg.NoClassStage, "no-class-stage", false, "do not run the class stage (tiles → class signals) in this process")
	fs.BoolVar(&cfg.Rebuild, "rebuild", false, "first wipe every student's state ({s:*}) and rebuild it from the topics (apply-only, nothing re-published) and the open warnings from the warnings topic, then run as usual; stop the group's other processors first")
	fs.DurationVar(&cfg.MaxSkew, "max-skew", 0, "refuse events stamped further in the future than this (default 5m)")
	fs.DurationVar(&scfg.Horizon, "horizon", 0, "per-second live history kept per student (default 10m)")
	var procs gomaxprocs
	procs.register(fs)
	fs.IntVar(&scfg.CacheStudents, "cache-students", 0, "most students whose live windows this process keeps a copy of in memory, about 50 KB each once scored for 5 minutes; beyond it copies are dropped and reloaded from Redis (default 100000)")
	fs.IntVar(&scfg.Group, "script-group", 0, "events applied by one call of the apply script, which saves Redis what each call costs before the script runs; 1 calls it once per event; over Redis Cluster every event is its own call (default 16)")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	var err error
	if cfg.Jurisdiction, err = stream.ParseJurisdiction(cfg.Jurisdiction); err != nil {
		return err
	}
	logger, err := in.logger()
	if err != nil {
		return err
	}
	_, restoreProcs, err := procs.apply(in.redis, logger)
	if err != nil {
		return err
	}
	defer restoreProcs()
	cfg.Brokers = in.brokers
	kafkaTLS, err := in.kafkaClientTLS(ctx)
	if err != nil {
		return err
	}
	cfg.KafkaTLS = kafkaTLS
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rdb := in.redisClient()
	defer rdb.Close()
	store, err := state.New(rdb, scfg)
	if err != nil {
		return err
	}
	defer store.Close()
	policy, err := loadPolicy(*policyPath)
	if err != nil {
		return err
	}
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: in.brokers, TLS: kafkaTLS}, logger)
	if err != nil {
		return err
	}
	defer prod.Close()
	proc, err := processor.New(cfg, store, policy, prod, logger, reg)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return proc.Run(gctx) })
	g.Go(func() error {
		return ops.Serve(gctx, *metricsAddr, ops.Handler(reg, func(ctx context.Context) error { return rdb.Ping(ctx).Err() }), logger)
	})
	if *policyPath != "" {
		g.Go(func() error { return reloadOnHUP(gctx, policy, *policyPath, logger) })
	}
	return g.Wait()
}

// reloadOnHUP reloads the policy on SIGHUP; a bad file is logged and the
// last good policy stays in force.
func reloadOnHUP(ctx context.Context, h interface{ Reload(string) error }, path string, logger interface {
	Info(string, ...any)
	Error(string, ...any)
}) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			if err := h.Reload(path); err != nil {
				logger.Error("policy reload failed; keeping the last good policy", "component", "policy", "path", path, "err", err)
			} else {
				logger.Info("policy reloaded", "component", "policy", "path", path)
			}
		}
	}
}
