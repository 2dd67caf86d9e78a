package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/yaml"

	"github.com/flink-gitops/flink-gitops/config"
	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// TestStateSinceTracksOperations: one series per resource, the time it
// entered its current lifecycle state; a state change moves it, a pass in
// the same state keeps it, a deleted resource has none.
func TestStateSinceTracksOperations(t *testing.T) {
	m := NewMetrics()
	clock := time.Unix(1_800_000_000, 0)
	m.now = func() time.Time { return clock }
	rec := func(state v1beta1.LifecycleState) *lifecycle.Record {
		r := &lifecycle.Record{Kind: lifecycle.KindDeployment, Namespace: "flink", Name: "orders", Deployment: &v1beta1.FlinkDeploymentStatus{}}
		r.Common().LifecycleState = state
		return r
	}
	series := func() map[string]float64 {
		out := map[string]float64{}
		ch := make(chan prometheus.Metric, 10)
		m.stateSince.Collect(ch)
		close(ch)
		for c := range ch {
			out[c.Desc().String()+labelsOf(t, c)] = value(t, c)
		}
		return out
	}
	steps := []struct {
		state   v1beta1.LifecycleState
		advance time.Duration
		want    map[string]float64 // lifecycle_state → timestamp
	}{
		{v1beta1.LifecycleStable, 0, map[string]float64{"STABLE": 1_800_000_000}},
		{v1beta1.LifecycleUpgrading, time.Minute, map[string]float64{"UPGRADING": 1_800_000_060}},
		{v1beta1.LifecycleUpgrading, time.Hour, map[string]float64{"UPGRADING": 1_800_000_060}}, // still the same operation
		{v1beta1.LifecycleDeployed, time.Minute, map[string]float64{"DEPLOYED": 1_800_003_720}},
		{v1beta1.LifecycleDeleted, time.Minute, map[string]float64{}},
	}
	var prev *lifecycle.Record
	for i, s := range steps {
		clock = clock.Add(s.advance)
		cur := rec(s.state)
		m.observeRecord(prev, cur)
		prev = cur
		got := map[string]float64{}
		for k, v := range series() {
			got[regexp.MustCompile(`lifecycle_state=(\w+)`).FindStringSubmatch(k)[1]] = v
		}
		if !reflect.DeepEqual(got, s.want) {
			t.Errorf("step %d (%s): series %v, want %v", i, s.state, got, s.want)
		}
	}
}

func labelsOf(t *testing.T, c prometheus.Metric) string {
	t.Helper()
	var b strings.Builder
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		t.Fatal(err)
	}
	for _, l := range d.GetLabel() {
		b.WriteString(" " + l.GetName() + "=" + l.GetValue())
	}
	return b.String()
}

// knownMetrics returns every metric name the daemon exports, histogram
// series (_bucket, _sum, _count) included.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	m := NewMetrics()
	m.watchConfig(config.NewStore(&config.Config{}))
	names := map[string]bool{}
	add := func(name string, histogram bool) {
		names[name] = true
		if histogram {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[name+s] = true
			}
		}
	}
	// Collectors that always have samples (Go, process, the config funcs).
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		add(f.GetName(), f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY)
	}
	// The metric vectors (no series until used): from their descriptors.
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	collectors := []prometheus.Collector{newForgeRequests(), m.reconciles, m.reconcileDuration, m.resources, m.savepoints, m.savepointErrors,
		m.lastSavepoint, m.gitPolls, m.gitPollDuration, m.renderDuration, m.statusWrites, m.statusDuration, m.webhooks, m.flinkREST, m.stateSince}
	for _, c := range collectors {
		ch := make(chan *prometheus.Desc, 4)
		c.Describe(ch)
		close(ch)
		_, histogram := c.(prometheus.ObserverVec)
		if _, ok := c.(prometheus.Histogram); ok {
			histogram = true
		}
		for d := range ch {
			add(fqName.FindStringSubmatch(d.String())[1], histogram)
		}
	}
	return names
}

var (
	promString  = regexp.MustCompile(`"(\\.|[^"\\])*"|'(\\.|[^'\\])*'`)
	promBraces  = regexp.MustCompile(`\{[^{}]*\}|\[[^\[\]]*\]`)
	promClause  = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promIdent   = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeyword = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// metricNames returns the metric names a PromQL expression selects: what
// is left of its identifiers once strings, label matchers, ranges, grouping
// clauses, functions and keywords are taken out.
func metricNames(expr string) []string {
	e := promString.ReplaceAllString(expr, `""`)
	for prev := ""; prev != e; {
		prev = e
		e = promBraces.ReplaceAllString(e, " ")
	}
	e = promClause.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		name := e[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(e[loc[0]-1:loc[0]], "0123456789.$") {
			continue // a number's exponent or a variable
		}
		if strings.HasPrefix(strings.TrimLeft(e[loc[1]:], " \t\n"), "(") || promKeyword[strings.ToLower(name)] {
			continue // a function or an operator
		}
		out = append(out, name)
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (kind) (rate(flink_gitops_reconcile_total{outcome="error"}[15m])) > 0 and on(kind) x_total == 0`: {"flink_gitops_reconcile_total", "x_total"},
		`histogram_quantile(0.99, sum by (le) (rate(a_bucket{job=~"$job"}[$__rate_interval])))`:                  {"a_bucket"},
		`time() - max(b_seconds{s=~"A|B"}) > 1800 or vector(0)`:                                                  {"b_seconds"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// TestMonitoringUsesKnownMetrics: every metric the dashboard and the alert
// rules in deploy/monitoring query is one the daemon exports.
func TestMonitoringUsesKnownMetrics(t *testing.T) {
	known := knownMetrics(t)
	dir := filepath.Join("..", "..", "..", "..", "deploy", "monitoring")
	var exprs []string

	raw, err := os.ReadFile(filepath.Join(dir, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Expr string
				For         string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	if err := yaml.UnmarshalStrict(raw, &rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %q: needs alert, expr, labels.severity and annotations.summary", r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			exprs = append(exprs, r.Expr)
		}
	}
	if len(exprs) < 5 {
		t.Fatalf("alerts.yaml has %d rules", len(exprs))
	}

	raw, err = os.ReadFile(filepath.Join(dir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	panels := 0
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if e, ok := v["expr"].(string); ok {
				exprs = append(exprs, e)
				panels++
			}
			if q, ok := v["definition"].(string); ok {
				// label_values(metric, label): the metric only.
				if m := regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`).FindStringSubmatch(q); m != nil {
					exprs = append(exprs, m[1])
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(dash)
	if panels < 10 {
		t.Fatalf("the dashboard has %d queries", panels)
	}
	used := 0
	for _, e := range exprs {
		names := metricNames(e)
		if len(names) == 0 {
			t.Errorf("no metric found in %q", e)
		}
		for _, n := range names {
			used++
			if !known[n] {
				t.Errorf("deploy/monitoring uses %s (in %q), which the daemon does not export", n, e)
			}
		}
	}
	t.Logf("%d queries, %d metric references, all known", len(exprs), used)
}
