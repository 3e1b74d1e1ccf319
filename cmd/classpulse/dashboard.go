package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/classpulse/classpulse/dashboard"
	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

const dashboardSummary = "serve the dashboard: pages, /api/v1, WebSocket live feed, /metrics"

func init() { register("dashboard", dashboardSummary, runDashboard) }

func runDashboard(ctx context.Context, args []string) error {
	fs := newFlagSet("dashboard", dashboardSummary)
	var in infra
	in.register(fs, true, true)
	var cfg dashboard.Config
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "listen address")
	var origins config.List
	fs.Var(&origins, "allowed-origins", "origins allowed to open the WebSocket and call the API (default: the server's own)")
	fs.StringVar(&cfg.TokenKeys, "token-keys", "", "token signing keys kid=hex,kid2=hex (default: a random key for this process only)")
	fs.StringVar(&cfg.SchoolName, "school", "classpulse", "school name printed on notices")
	fs.BoolVar(&cfg.SecureCookie, "secure-cookie", false, "mark the session cookie Secure (behind HTTPS)")
	cfg.Limits = dashboard.DefaultRateLimits()
	fs.Var(&cfg.Limits.APIPerToken, "rate-api-token", "API requests per token: <per second>/<burst>, or off")
	fs.Var(&cfg.Limits.APIPerIP, "rate-api-ip", "API requests and sign-ins per client address: <per second>/<burst>, or off")
	fs.Var(&cfg.Limits.WSPerToken, "rate-ws-token", "WebSocket connects per token: <per second>/<burst>, or off")
	fs.Var(&cfg.Limits.WSPerIP, "rate-ws-ip", "WebSocket connects per client address: <per second>/<burst>, or off")
	var proxies config.List
	fs.Var(&proxies, "trusted-proxies", "addresses or CIDR prefixes of reverse proxies whose X-Forwarded-For names the client (for the per-address limits)")
	fs.StringVar(&cfg.Jurisdiction, "jurisdiction", "default", "jurisdiction profile (default, eu, cn, us, uk): under eu no emotion field and no emotion-derived warning is shown")
	fs.DurationVar(&cfg.RevocationPoll, "revocation-poll", 15*time.Second, "how often the token revocation list is reread besides its pub/sub notices (at most 1m)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate chain to serve HTTPS and WSS with (with --tls-key; default plain HTTP)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM key of --tls-cert")
	noQueue := fs.Bool("no-queue", false, "do not project the warning queue from Kafka in this replica")
	var xf xapiFlags
	xf.register(fs, "to mount POST /api/v1/xapi/statements in the dashboard, as classpulse xapi serves it (default: not mounted)")
	policyPath := fs.String("policy", "", "policy file the processor runs, for the study time each course requires on the student page and the playbooks (default: the embedded default policy); SIGHUP reloads it")
	var scfg state.Config
	fs.DurationVar(&scfg.Horizon, "horizon", 0, "the processor's --horizon, so the student page finds its per-second live buckets (default 10m)")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	logger, err := in.logger()
	if err != nil {
		return err
	}
	if err := in.checkTLS(); err != nil {
		return err
	}
	kafkaTLS, err := in.kafkaClientTLS(ctx)
	if err != nil {
		return err
	}
	cfg.KafkaTLS = kafkaTLS
	cfg.AllowedOrigins = origins
	cfg.TrustedProxies = proxies
	if !*noQueue {
		cfg.Brokers = in.brokers
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rdb := in.redisClient()
	defer rdb.Close()
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: in.brokers, TLS: kafkaTLS}, logger)
	if err != nil {
		return err
	}
	defer prod.Close()
	policy, err := loadPolicy(*policyPath)
	if err != nil {
		return err
	}
	students, err := dashboard.NewStateReader(rdb, scfg, policy, nil)
	if err != nil {
		return err
	}
	opts := []dashboard.Option{dashboard.WithStudentReader(students)}
	if len(xf.sources) > 0 {
		xh, err := xf.handler(prod, logger, reg)
		if err != nil {
			return err
		}
		opts = append(opts, dashboard.WithXAPI(xh))
	}
	srv, err := dashboard.New(cfg, rdb, prod, logger, reg, opts...)
	if err != nil {
		return err
	}
	if *policyPath != "" {
		// Ends with ctx; a bad file is logged and the last good one kept.
		go func() { _ = reloadOnHUP(ctx, policy, *policyPath, logger) }()
	}
	return srv.Run(ctx)
}
