package daemon

import (
	"context"
	"net/http"
	"strconv"
	gosync "sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/flink-gitops/flink-gitops/config"
	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// Metrics are the daemon's Prometheus metrics, on a registry of its own.
type Metrics struct {
	reg *prometheus.Registry

	reconciles        *prometheus.CounterVec
	reconcileDuration *prometheus.HistogramVec
	resources         *prometheus.GaugeVec
	savepoints        *prometheus.CounterVec
	savepointErrors   *prometheus.CounterVec
	lastSavepoint     *prometheus.GaugeVec
	gitPolls          *prometheus.CounterVec
	gitPollDuration   *prometheus.HistogramVec
	renderDuration    prometheus.Histogram
	statusWrites      *prometheus.CounterVec
	statusDuration    prometheus.Histogram
	webhooks          *prometheus.CounterVec
	flinkREST         *prometheus.HistogramVec
	stateSince        *prometheus.GaugeVec
	kubeRequests      *prometheus.CounterVec
	drift             prometheus.Counter

	mu     gosync.Mutex
	states map[string]string // key → lifecycle state, for the resources gauge
	now    func() time.Time
}

// NewMetrics registers every metric.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), states: map[string]string{}, now: time.Now}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reconciles = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flink_gitops_reconcile_total", Help: "Reconcile passes by kind and outcome (ok, error)."}, []string{"kind", "outcome"})
	m.reconcileDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "flink_gitops_reconcile_duration_seconds", Help: "Duration of one reconcile pass.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)}, []string{"kind", "outcome"})
	m.resources = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "flink_gitops_resources", Help: "Managed resources by lifecycle state."}, []string{"lifecycle_state"})
	m.savepoints = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flink_gitops_savepoints_total", Help: "Completed savepoints by trigger type."}, []string{"trigger_type"})
	m.savepointErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flink_gitops_savepoint_errors_total", Help: "Failed savepoints (SavepointError events)."}, []string{"namespace", "name"})
	m.lastSavepoint = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "flink_gitops_last_savepoint_timestamp_seconds", Help: "Time of each resource's newest savepoint; age is time() minus this."}, []string{"kind", "namespace", "name"})
	m.gitPolls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flink_gitops_git_polls_total", Help: "Git polls by result (noop, fetched, error)."}, []string{"result"})
	m.gitPollDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "flink_gitops_git_poll_duration_seconds", Help: "Duration of a git poll (ls-remote, plus fetch when the head moved).", Buckets: prometheus.ExponentialBuckets(0.002, 2.5, 10)}, []string{"result"})
	m.renderDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "flink_gitops_render_duration_seconds", Help: "Duration of rendering one snapshot.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)})
	m.statusWrites = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flink_gitops_status_writes_total", Help: "Status branch writes by result."}, []string{"result"})
	m.statusDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "flink_gitops_status_write_duration_seconds", Help: "Duration of one status branch write.", Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 8)})
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flink_gitops_webhook_requests_total", Help: "Webhook deliveries by HTTP status code."}, []string{"code"})
	m.flinkREST = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "flink_gitops_flink_rest_request_duration_seconds", Help: "Flink REST calls by method and status code (0: no answer).", Buckets: prometheus.ExponentialBuckets(0.002, 2.5, 10)}, []string{"method", "code"})
	m.stateSince = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "flink_gitops_resource_state_since_timestamp_seconds",
		Help: "When each resource entered its current lifecycle state, as this process saw it; time() minus this is how long an operation (UPGRADING, ROLLING_BACK, DELETING) has run."},
		[]string{"kind", "namespace", "name", "lifecycle_state"})
	m.kubeRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flink_gitops_kube_requests_total",
		Help: "Requests of the daemon's Kubernetes client by method and status code (0: no answer); watches count once when opened."}, []string{"method", "code"})
	m.drift = prometheus.NewCounter(prometheus.CounterOpts{Name: "flink_gitops_drift_events_total",
		Help: "Changes by someone else to a cluster object the daemon manages, seen by its watch (each reconciles the resource at once)."})
	for _, c := range []prometheus.Collector{m.kubeRequests, m.drift, m.reconciles, m.reconcileDuration, m.resources, m.savepoints, m.savepointErrors, m.lastSavepoint,
		m.gitPolls, m.gitPollDuration, m.renderDuration, m.statusWrites, m.statusDuration, m.webhooks, m.flinkREST, m.stateSince} {
		f(c)
	}
	return m
}

// newForgeRequests is the counter of the pull-request reporter's forge
// API calls, registered when the reporter starts.
func newForgeRequests() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flink_gitops_forge_requests_total",
		Help: "Forge API requests of the pull-request comments by method, status code (0: no answer) and whether the ETag cache answered (a 304)."},
		[]string{"method", "code", "cached"})
}

// Handler serves the registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// watchConfig exports the config reload status.
func (m *Metrics) watchConfig(s *config.Store) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "flink_gitops_config_reloads_total", Help: "Accepted config reloads."},
			func() float64 { return float64(s.Status().Reloads) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "flink_gitops_config_reload_failures_total", Help: "Rejected config reloads."},
			func() float64 { return float64(s.Status().Failures) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flink_gitops_config_last_reload_failed", Help: "1 when the last config reload was rejected."},
			func() float64 {
				if s.Status().LastError != nil {
					return 1
				}
				return 0
			}),
	)
}

func outcome(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

func (m *Metrics) observeReconcile(kind string, d time.Duration, err error) {
	m.reconciles.WithLabelValues(kind, outcome(err)).Inc()
	m.reconcileDuration.WithLabelValues(kind, outcome(err)).Observe(d.Seconds())
}

func (m *Metrics) observePoll(d time.Duration, fetched bool, err error) {
	r := "noop"
	switch {
	case err != nil:
		r = "error"
	case fetched:
		r = "fetched"
	}
	m.gitPolls.WithLabelValues(r).Inc()
	m.gitPollDuration.WithLabelValues(r).Observe(d.Seconds())
}

func (m *Metrics) observeStatusWrite(d time.Duration, err error) {
	m.statusWrites.WithLabelValues(outcome(err)).Inc()
	m.statusDuration.Observe(d.Seconds())
}

// observeRecord updates the per-state gauge and counts savepoints that
// appeared since the previous record.
func (m *Metrics) observeRecord(prev, cur *lifecycle.Record) {
	key := Key(cur.Kind, cur.Namespace, cur.Name)
	m.mu.Lock()
	old, known := m.states[key]
	if known {
		m.resources.WithLabelValues(old).Dec()
	}
	st := string(cur.Common().LifecycleState)
	m.states[key] = st
	m.resources.WithLabelValues(st).Inc()
	if !known || old != st {
		// One series per resource: the old state's goes, the new one's
		// starts now (a restarted daemon starts them all anew).
		if known {
			m.stateSince.DeleteLabelValues(cur.Kind, cur.Namespace, cur.Name, old)
		}
		if cur.Common().LifecycleState != v1beta1.LifecycleDeleted {
			m.stateSince.WithLabelValues(cur.Kind, cur.Namespace, cur.Name, st).Set(float64(m.now().UnixMilli()) / 1000)
		}
	}
	m.mu.Unlock()

	si := cur.Common().JobStatus.SavepointInfo
	if si == nil || si.LastSavepoint == nil {
		return
	}
	m.lastSavepoint.WithLabelValues(cur.Kind, cur.Namespace, cur.Name).Set(float64(si.LastSavepoint.TimeStamp) / 1000)
	var prevLoc string
	if prev != nil {
		if psi := prev.Common().JobStatus.SavepointInfo; psi != nil && psi.LastSavepoint != nil {
			prevLoc = psi.LastSavepoint.Location
		}
	}
	if prev != nil && si.LastSavepoint.Location != prevLoc {
		m.savepoints.WithLabelValues(string(si.LastSavepoint.TriggerType)).Inc()
	}
}

// instrumentWebhook counts deliveries by status code.
func (m *Metrics) instrumentWebhook(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		m.webhooks.WithLabelValues(strconv.Itoa(rec.code)).Inc()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// instrumentFlink times Flink REST calls.
func (m *Metrics) instrumentFlink(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		start := time.Now()
		resp, err := rt.RoundTrip(r)
		code := "0"
		if resp != nil {
			code = strconv.Itoa(resp.StatusCode)
		}
		m.flinkREST.WithLabelValues(r.Method, code).Observe(time.Since(start).Seconds())
		return resp, err
	})
}

// instrumentKube counts the Kubernetes client's requests.
func (m *Metrics) instrumentKube(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(r)
		code := "0"
		if resp != nil {
			code = strconv.Itoa(resp.StatusCode)
		}
		m.kubeRequests.WithLabelValues(r.Method, code).Inc()
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// countEvents wraps the client that lifecycle.Events records events with,
// so that savepoint failures (SavepointError events) are counted as they
// happen: the status keeps only the latest error, the counter every one.
func (m *Metrics) countEvents(kc kubernetes.Interface) kubernetes.Interface {
	return eventCounter{Interface: kc, m: m}
}

type eventCounter struct {
	kubernetes.Interface
	m *Metrics
}

func (c eventCounter) CoreV1() corev1client.CoreV1Interface {
	return coreCounter{CoreV1Interface: c.Interface.CoreV1(), m: c.m}
}

type coreCounter struct {
	corev1client.CoreV1Interface
	m *Metrics
}

func (c coreCounter) Events(namespace string) corev1client.EventInterface {
	return eventsCounter{EventInterface: c.CoreV1Interface.Events(namespace), m: c.m}
}

type eventsCounter struct {
	corev1client.EventInterface
	m *Metrics
}

func (c eventsCounter) Create(ctx context.Context, ev *corev1.Event, opts metav1.CreateOptions) (*corev1.Event, error) {
	if ev.Reason == lifecycle.ReasonSavepointError {
		c.m.savepointErrors.WithLabelValues(ev.Namespace, ev.Labels[lifecycle.LabelName]).Inc()
	}
	return c.EventInterface.Create(ctx, ev, opts)
}
