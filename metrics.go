package adauth

import (
	"errors"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics live in Caddy's Prometheus registry, so they are served wherever
// Caddy serves /metrics (the admin endpoint, or a `metrics` handler). The
// collectors are process-wide: several sites and every config reload feed
// the same series.
var metrics = struct {
	once      sync.Once
	signIns   *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	throttled prometheus.Counter
	dirUp     *directoryCollector
}{}

func initMetrics() {
	metrics.once.Do(func() {
		metrics.signIns = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "adauth_signins_total",
			Help: "Sign-in attempts by backend and outcome (success, bad_credentials, refused, unavailable, throttled).",
		}, []string{"backend", "outcome"})
		metrics.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "adauth_backend_seconds",
			Help:    "Time a backend took for one operation (authenticate, lookup, exchange).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"backend", "operation"})
		metrics.throttled = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "adauth_throttled_total",
			Help: "Sign-in attempts refused by the brute-force throttle without asking a backend.",
		})
		metrics.dirUp = &directoryCollector{
			desc: prometheus.NewDesc("adauth_directory_up",
				"1 when the directory server (domain controller) answered at its last use, 0 while it is skipped as failed.",
				[]string{"server"}, nil),
			sources: map[*Handler]func() map[string]bool{},
		}
	})
}

// registerMetrics adds the collectors to this config's registry. A second
// site in the same config registers them again: that is not an error.
func registerMetrics(ctx caddy.Context) error {
	initMetrics()
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{metrics.signIns, metrics.latency, metrics.throttled, metrics.dirUp} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// observeBackend and observeSignIn run on every sign-in attempt: a label
// lookup and an atomic add each.
func (h *Handler) observeBackend(backend, operation string, d time.Duration) {
	if metrics.latency != nil {
		metrics.latency.WithLabelValues(backend, operation).Observe(d.Seconds())
	}
}

func (h *Handler) observeSignIn(backend string, o outcome) {
	if metrics.signIns == nil {
		return
	}
	if backend == "" {
		backend = "none"
	}
	metrics.signIns.WithLabelValues(backend, o.String()).Inc()
	if o == outcomeThrottled {
		metrics.throttled.Inc()
	}
}

// directoryCollector reports the health of every configured directory
// server at scrape time, from the backends' own failover memory: no probe
// traffic of its own.
type directoryCollector struct {
	desc    *prometheus.Desc
	mu      sync.Mutex
	sources map[*Handler]func() map[string]bool
}

func (c *directoryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *directoryCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	fs := make([]func() map[string]bool, 0, len(c.sources))
	for _, f := range c.sources {
		fs = append(fs, f)
	}
	c.mu.Unlock()
	seen := map[string]bool{}
	for _, f := range fs {
		for server, up := range f() {
			if seen[server] {
				continue
			}
			seen[server] = true
			v := 0.0
			if up {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, server)
		}
	}
}

// watchDirectory makes a backend's server health visible as
// adauth_directory_up until the handler is cleaned up.
func (h *Handler) watchDirectory(health func() map[string]bool) {
	initMetrics()
	metrics.dirUp.mu.Lock()
	metrics.dirUp.sources[h] = health
	metrics.dirUp.mu.Unlock()
}

func (h *Handler) unwatchDirectory() {
	if metrics.dirUp == nil {
		return
	}
	metrics.dirUp.mu.Lock()
	delete(metrics.dirUp.sources, h)
	metrics.dirUp.mu.Unlock()
}
