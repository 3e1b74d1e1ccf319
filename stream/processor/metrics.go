package processor

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/classpulse/classpulse/stream/state"
)

type metrics struct {
	events      *prometheus.CounterVec
	latency     prometheus.Histogram
	batchSize   prometheus.Histogram
	scriptDur   prometheus.Histogram
	lag         *prometheus.GaugeVec
	redisErrors prometheus.Counter
	dlq         *prometheus.CounterVec
	warnings    *prometheus.CounterVec
	erasures    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, store *state.Store) *metrics {
	f := promauto.With(reg)
	f.NewCounterFunc(prometheus.CounterOpts{
		Name: "classpulse_processor_stale_copies_total",
		Help: "Score writes the apply script refused because this process's copy of the student's live state was stale (another member or an erasure wrote it); each is recomputed from a reloaded copy.",
	}, func() float64 { return float64(store.StaleCopies()) })
	f.NewCounterFunc(prometheus.CounterOpts{
		Name: "classpulse_processor_gap_refusals_total",
		Help: "Clicks, grades and consents the apply script refused because an earlier event of the student, in a batch written to Redis before theirs, was not applied (that batch failed); each is sent again once it is. Scores refused so count in classpulse_processor_stale_copies_total.",
	}, func() float64 { return float64(store.GapRefusals()) })
	return &metrics{
		events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "classpulse_processor_events_total",
			Help: "Input events by topic and outcome (applied, duplicate, invalid, refused, late).",
		}, []string{"topic", "outcome"}),
		latency: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "classpulse_processor_latency_seconds",
			Help:    "Time from an event's timestamp to its effect being applied in Redis.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		batchSize: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "classpulse_processor_batch_size",
			Help:    "Messages per fetched batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		scriptDur: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "classpulse_processor_script_duration_seconds",
			Help:    "Duration of one pipelined round of apply scripts for a group of a batch, from writing it to Redis to its last reply (with the rounds that send refused events again).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		lag: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "classpulse_processor_consumer_lag",
			Help: "Messages behind the partition's high-water mark after the last batch.",
		}, []string{"topic", "partition"}),
		redisErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "classpulse_processor_redis_errors_total",
			Help: "Failed Redis round trips (each retried with backoff).",
		}),
		dlq: f.NewCounterVec(prometheus.CounterOpts{
			Name: "classpulse_dlq_events_total",
			Help: "Input events sent to the dead-letter topic, by source topic.",
		}, []string{"topic"}),
		warnings: f.NewCounterVec(prometheus.CounterOpts{
			Name: "classpulse_warnings_total",
			Help: "Warnings raised or escalated, by category and level.",
		}, []string{"category", "level"}),
		erasures: f.NewCounter(prometheus.CounterOpts{
			Name: "classpulse_processor_erasures_total",
			Help: "Camera-derived state erasures after consent was revoked.",
		}),
	}
}
