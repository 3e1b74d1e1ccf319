package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/internal/ops"
	"github.com/classpulse/classpulse/notify"
)

const notifySummary = "send warnings to people by e-mail, signed webhooks and WeCom/DingTalk/Feishu bots: classpulse notify --routes FILE"

func init() { register("notify", notifySummary, runNotify) }

func runNotify(ctx context.Context, args []string) error {
	fs := newFlagSet("notify", notifySummary)
	var in infra
	in.register(fs, true, true)
	var nf notifyFlags
	nf.register(fs, "routing file (JSON, see docs/ingest.md#notifications) (required)")
	group := fs.String("group", "", `consumer group (default from the routing file, else "classpulse-notify")`)
	listen := fs.String("listen", "127.0.0.1:9465", "address of /metrics, /healthz and /readyz; empty for none")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if nf.routes == "" {
		return errors.New("--routes is required")
	}
	cfg, err := nf.load(in.brokers)
	if err != nil {
		return err
	}
	if *group != "" {
		cfg.Group = *group
	}
	logger, err := in.logger()
	if err != nil {
		return err
	}
	if cfg.KafkaTLS, err = in.kafkaClientTLS(ctx); err != nil {
		return err
	}
	rdb := in.redisClient()
	defer rdb.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d, err := notify.New(*cfg, rdb, logger, reg)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.Run(ctx) })
	if *listen != "" {
		g.Go(func() error {
			return ops.Serve(ctx, *listen, ops.Handler(reg, func(ctx context.Context) error { return rdb.Ping(ctx).Err() }), logger)
		})
	}
	fmt.Fprintf(os.Stderr, "classpulse notify: %d routes, group %s\n", len(cfg.Routes), cfg.Group)
	return g.Wait()
}

// notifyFlags are the flags that configure notify routing, shared by
// notify and followup (which sends help-plan reminders the same way).
type notifyFlags struct {
	routes, smtpPassword, webhookSecret string
	botSecrets                          config.List
}

func (f *notifyFlags) register(fs *flag.FlagSet, routesHelp string) {
	fs.StringVar(&f.routes, "routes", "", routesHelp)
	fs.StringVar(&f.smtpPassword, "smtp-password", "", "password for the SMTP relay's username in the routing file")
	fs.StringVar(&f.webhookSecret, "webhook-secret", "", "HMAC-SHA256 key signing generic webhooks (X-Classpulse-Signature)")
	fs.Var(&f.botSecrets, "bot-secrets", "signing secrets of DingTalk/Feishu bots: url=secret,… (URL exactly as in the routing file)")
}

// load reads the routing file and adds the secrets and brokers.
func (f *notifyFlags) load(brokers []string) (*notify.Config, error) {
	cfg, err := notify.LoadConfig(f.routes)
	if err != nil {
		return nil, err
	}
	cfg.Brokers = brokers
	cfg.SMTP.Password = f.smtpPassword
	cfg.WebhookSecret = f.webhookSecret
	if len(f.botSecrets) > 0 {
		cfg.BotSecrets = map[string]string{}
		for _, it := range f.botSecrets {
			// The URL itself contains '='; the secret follows the last one.
			i := strings.LastIndex(it, "=")
			if i <= 0 || i == len(it)-1 {
				return nil, fmt.Errorf("--bot-secrets item %q: want url=secret", it)
			}
			cfg.BotSecrets[it[:i]] = it[i+1:]
		}
	}
	return cfg, nil
}
