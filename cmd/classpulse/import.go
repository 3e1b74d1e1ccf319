package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/ingest"
	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/internal/ops"
	"github.com/classpulse/classpulse/stream"
)

const importSummary = "import a roster, contacts, grades or campus signals file (CSV or XLSX): classpulse import --kind roster FILE"

func init() { register("import", importSummary, runImport) }

func runImport(ctx context.Context, args []string) error { return importCmd(ctx, args, os.Stdout) }

// importCmd is runImport writing its JSON report to out.
func importCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlagSet("import", importSummary)
	var in infra
	in.register(fs, true, true)
	kind := fs.String("kind", "", "what the file holds: roster, contacts, grades or signals (required)")
	dryRun := fs.Bool("dry-run", false, "check every row and report errors (row, column, reason); write nothing")
	partial := fs.Bool("allow-partial", false, "write the good rows even when some rows are bad (default: a bad row stops the whole file)")
	passMark := fs.Float64("pass-mark", 60, "grades without a passed column pass at or above this score")
	tz := fs.String("tz", "UTC", "time zone of times written without one, e.g. Asia/Shanghai")
	source := fs.String("source", "import", "name of the system signal rows come from, stored on each signal")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want exactly one file argument (.csv or .xlsx)")
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return fmt.Errorf("--tz: %w", err)
	}
	logger, err := in.logger()
	if err != nil {
		return err
	}
	cfg := ingest.ImportConfig{Kind: *kind, DryRun: *dryRun, AllowPartial: *partial, PassMark: *passMark, Location: loc, Source: *source}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	table, err := ingest.ReadTable(fs.Arg(0), f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	var rdb redis.UniversalClient
	var pub ingest.Publisher
	if !*dryRun {
		if *kind != ingest.KindGrades {
			rdb = in.redisClient()
			defer rdb.Close()
		}
		if *kind == ingest.KindGrades || *kind == ingest.KindSignals {
			kafkaTLS, err := in.kafkaClientTLS(ctx)
			if err != nil {
				return err
			}
			p, err := stream.NewProducer(stream.ProducerConfig{Brokers: in.brokers, TLS: kafkaTLS}, logger)
			if err != nil {
				return err
			}
			defer p.Close()
			pub = p
		}
	}
	im, err := ingest.NewImporter(cfg, rdb, pub, logger)
	if err != nil {
		return err
	}
	rep, err := im.Import(ctx, table)
	if rep != nil {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	}
	if err != nil {
		return err
	}
	if *dryRun && len(rep.Errors) > 0 {
		return fmt.Errorf("dry run: %d of %d rows are bad", len(rowsOf(rep.Errors)), rep.Rows)
	}
	return nil
}

func rowsOf(errs []ingest.RowError) map[int]bool {
	m := map[int]bool{}
	for _, e := range errs {
		m[e.Row] = true
	}
	return m
}

const xapiSummary = "serve POST /api/v1/xapi/statements on its own: LMS statements in, clicks on Kafka (classpulse xapi --xapi-sources moodle=SECRET)"

func init() { register("xapi", xapiSummary, runXAPI) }

// runXAPI serves the xAPI endpoint standalone, for schools that expose it
// apart from the dashboard (or scale it separately); the dashboard can also
// mount ingest.XAPIHandler at ingest.XAPIPath.
func runXAPI(ctx context.Context, args []string) error {
	fs := newFlagSet("xapi", xapiSummary)
	var in infra
	in.register(fs, true, false)
	listen := fs.String("listen", "127.0.0.1:8082", "address of the xAPI endpoint and of /metrics, /healthz, /readyz")
	var xf xapiFlags
	xf.register(fs, "(required; secrets of 16+ characters)")
	printToken := fs.String("print-token", "", "print the bearer token of this source (for the LMS's LRS settings) and exit")
	tlsCert := fs.String("tls-cert", "", "PEM certificate chain to serve HTTPS with (with --tls-key; default plain HTTP), as the dashboard's --tls-cert")
	tlsKey := fs.String("tls-key", "", "PEM key of --tls-cert")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	srcs, err := ingest.ParseSources(xf.sources)
	if err != nil {
		return err
	}
	if *printToken != "" {
		secret, ok := srcs[*printToken]
		if !ok {
			return fmt.Errorf("--print-token %s: no such source in --xapi-sources", *printToken)
		}
		fmt.Println(ingest.SourceToken(*printToken, secret))
		return nil
	}
	serverTLS, err := config.ServerTLS(*tlsCert, *tlsKey)
	if err != nil {
		return err
	}
	logger, err := in.logger()
	if err != nil {
		return err
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h, err := xf.handler(prod, logger, reg)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(ingest.XAPIPath, h)
	mux.Handle("/", ops.Handler(reg, func(context.Context) error { return nil }))
	return ops.ServeTLS(ctx, *listen, mux, serverTLS, logger)
}

// xapiFlags configure the xAPI endpoint, served on its own by xapi or
// mounted in the dashboard (dashboard --xapi-sources).
type xapiFlags struct {
	sources config.List
	mapping string
}

func (f *xapiFlags) register(fs *flag.FlagSet, required string) {
	fs.Var(&f.sources, "xapi-sources", "source systems and their secrets: name=secret,… "+required)
	fs.StringVar(&f.mapping, "xapi-mapping", "", "JSON mapping table (verbs and activity types → click kinds); default the built-in table of docs/ingest.md")
}

// handler builds the xAPI handler publishing with pub.
func (f *xapiFlags) handler(pub ingest.Publisher, logger *slog.Logger, reg prometheus.Registerer) (*ingest.XAPIHandler, error) {
	srcs, err := ingest.ParseSources(f.sources)
	if err != nil {
		return nil, err
	}
	cfg := ingest.XAPIConfig{Sources: srcs}
	if f.mapping != "" {
		if cfg.Mapping, err = ingest.LoadMapping(f.mapping); err != nil {
			return nil, err
		}
	}
	return ingest.NewXAPIHandler(cfg, pub, logger, reg)
}
