package main

import (
	"context"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/classpulse/classpulse/helploop"
	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/internal/ops"
	"github.com/classpulse/classpulse/notify"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

const followupSummary = "follow up help plans on their playbook's checkpoints: re-check the student's data, record progress, remind, escalate or propose closing (run one or more replicas)"

func init() { register("followup", followupSummary, runFollowup) }

func runFollowup(ctx context.Context, args []string) error {
	fs := newFlagSet("followup", followupSummary)
	var in infra
	in.register(fs, true, true)
	var cfg helploop.Config
	fs.DurationVar(&cfg.Every, "every", 0, "how often to look for due checkpoints (default 1m)")
	fs.DurationVar(&cfg.Lease, "lease", 0, "how long a claimed checkpoint stays claimed by a replica that died (default 5m)")
	policyPath := fs.String("policy", "", "the processor's policy file, whose playbooks: give the checkpoints (default: the embedded default policy); SIGHUP reloads it")
	var scfg state.Config
	fs.DurationVar(&scfg.Horizon, "horizon", 0, "the processor's --horizon (default 10m)")
	var nf notifyFlags
	nf.register(fs, "notify routing file (JSON, docs/ingest.md#notifications) for the reminders; routes with state follow_up get them (default: no reminders, steps only)")
	listen := fs.String("listen", "127.0.0.1:9466", "address of /metrics, /healthz and /readyz; empty for none")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	logger, err := in.logger()
	if err != nil {
		return err
	}
	policy, err := loadPolicy(*policyPath)
	if err != nil {
		return err
	}
	rdb := in.redisClient()
	defer rdb.Close()
	reader, err := state.NewReader(rdb, scfg)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var opts []helploop.Option
	if nf.routes != "" {
		ncfg, err := nf.load(in.brokers)
		if err != nil {
			return err
		}
		// The dispatcher only delivers here; held and digest reminders are
		// flushed by classpulse notify, which shares the Redis queue.
		d, err := notify.New(*ncfg, rdb, logger, reg)
		if err != nil {
			return err
		}
		opts = append(opts, helploop.WithNotifier(d))
	}
	kafkaTLS, err := in.kafkaClientTLS(ctx)
	if err != nil {
		return err
	}
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: in.brokers, TLS: kafkaTLS}, logger)
	if err != nil {
		return err
	}
	defer prod.Close()
	loop, err := helploop.New(cfg, rdb, reader, policy, prod, logger, reg, opts...)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return loop.Run(gctx) })
	if *policyPath != "" {
		g.Go(func() error { return reloadOnHUP(gctx, policy, *policyPath, logger) })
	}
	if *listen != "" {
		g.Go(func() error {
			return ops.Serve(gctx, *listen, ops.Handler(reg, func(ctx context.Context) error { return rdb.Ping(ctx).Err() }), logger)
		})
	}
	fmt.Fprintf(os.Stderr, "classpulse followup: %d playbooks, reminders %v\n", len(policy.Policy().Playbooks), nf.routes != "")
	return g.Wait()
}
