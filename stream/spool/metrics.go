package spool

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	appended      prometheus.Counter
	delivered     prometheus.Counter
	dropped       *prometheus.CounterVec
	publishErrors prometheus.Counter
	pending       prometheus.Gauge
	bytes         prometheus.Gauge
}

// newMetrics registers the spool's metrics on reg (nil: unregistered). A
// process with two spools wraps reg with prometheus.WrapRegistererWith.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		appended: f.NewCounter(prometheus.CounterOpts{
			Name: "classpulse_spool_appended_records_total", Help: "Records written to the spool.",
		}),
		delivered: f.NewCounter(prometheus.CounterOpts{
			Name: "classpulse_spool_delivered_records_total", Help: "Records published from the spool and acknowledged.",
		}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "classpulse_spool_dropped_records_total", Help: "Records lost before delivery: reason full (oldest dropped at the byte limit) or corrupt (torn tail cut off at open; counts occurrences).",
		}, []string{"reason"}),
		publishErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "classpulse_spool_publish_errors_total", Help: "Failed attempts to publish a batch from the spool.",
		}),
		pending: f.NewGauge(prometheus.GaugeOpts{
			Name: "classpulse_spool_pending_records", Help: "Records waiting for delivery.",
		}),
		bytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "classpulse_spool_size_bytes", Help: "Disk space used by spool segments.",
		}),
	}
}
