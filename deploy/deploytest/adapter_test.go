package deploytest

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/herdhq/herd/internal/admin"
	"github.com/herdhq/herd/internal/supervisor"
)

// adapterConfig is prometheus-adapter's --config file, the fields of its
// pkg/config (DiscoveryRule) this repository uses or could: decoded
// strictly, a misspelt field is an error here rather than a rule the
// adapter silently ignores.
type adapterConfig struct {
	Rules []adapterRule `json:"rules"`
}

type adapterRule struct {
	SeriesQuery   string `json:"seriesQuery"`
	SeriesFilters []struct {
		Is    string `json:"is,omitempty"`
		IsNot string `json:"isNot,omitempty"`
	} `json:"seriesFilters,omitempty"`
	Resources struct {
		Overrides map[string]struct {
			Group    string `json:"group,omitempty"`
			Resource string `json:"resource"`
		} `json:"overrides,omitempty"`
		Template string `json:"template,omitempty"`
	} `json:"resources"`
	Name struct {
		Matches string `json:"matches"`
		As      string `json:"as,omitempty"`
	} `json:"name"`
	MetricsQuery string `json:"metricsQuery"`
}

// TestDeployPrometheusAdapter renders deploy/k8s/prometheus-adapter and
// checks its rule against what it joins: the series it selects is a
// counter herd's admin registry really exports, filtered only on labels it
// has or Prometheus's pod discovery adds; its label overrides map those
// discovery labels onto the namespace and pod of herd's pods, which are
// scraped on the admin port herd serves /metrics on; and the metric name it
// serves is the one base/hpa.yaml scales on.
func TestDeployPrometheusAdapter(t *testing.T) {
	path := filepath.Join(repoRoot(t), "deploy", "k8s", "prometheus-adapter")
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), path)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", path, err)
	}
	if n := len(res.Resources()); n != 1 {
		t.Fatalf("%s: want the adapter's ConfigMap alone; got %d objects", path, n)
	}
	data, err := res.Resources()[0].AsYAML()
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(data, &cm); err != nil || cm.Kind != "ConfigMap" {
		t.Fatalf("%s: want a ConfigMap (%v): %s", path, err, data)
	}
	// The name and key prometheus-adapter's own manifests mount.
	if cm.Name != "adapter-config" || cm.Data["config.yaml"] == "" {
		t.Fatalf("ConfigMap %s with keys %v; want adapter-config with config.yaml", cm.Name, keys(cm.Data))
	}
	var cfg adapterConfig
	if err := yaml.UnmarshalStrict([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
		t.Fatalf("config.yaml is no prometheus-adapter config: %v", err)
	}
	if len(cfg.Rules) != 1 {
		t.Fatalf("config.yaml: want one rule; got %d", len(cfg.Rules))
	}
	rule := cfg.Rules[0]

	// What herd exports: every series of its admin registry, with its labels.
	exported := herdSeries(t)

	// seriesQuery: one metric and its label matchers.
	series, matchers := parseSelector(t, rule.SeriesQuery)
	labels, ok := exported[series]
	if !ok {
		t.Fatalf("seriesQuery %q selects %s, which herd does not export (it exports %v)", rule.SeriesQuery, series, keys(exported))
	}
	if !strings.HasSuffix(series, "_total") {
		t.Errorf("%s: want a counter, which the rule turns into a rate", series)
	}

	// The overrides: Prometheus's pod discovery labels (relabelled from
	// __meta_kubernetes_namespace and __meta_kubernetes_pod_name, as the
	// comment in config.yaml says) onto namespace and pod, which a Pods
	// metric of the HPA needs. herd's own series must not carry labels of
	// those names: Prometheus would rename the scraped ones exported_*.
	want := map[string]string{"namespace": "namespace", "pod": "pod"}
	got := map[string]string{}
	for label, o := range rule.Resources.Overrides {
		if o.Group != "" {
			t.Errorf("override %s: group %q; namespace and pod are in the core group", label, o.Group)
		}
		got[label] = o.Resource
		if labels[label] {
			t.Errorf("herd's %s already has a label %q: it would clash with the one Prometheus adds", series, label)
		}
	}
	if len(got) != len(want) || got["namespace"] != want["namespace"] || got["pod"] != want["pod"] {
		t.Errorf("resources.overrides map %v; want %v (the labels pod discovery adds)", got, want)
	}
	for _, l := range matchers {
		if !labels[l] && got[l] == "" {
			t.Errorf("seriesQuery filters on %q, which neither herd's %s nor the overrides have", l, series)
		}
	}

	// Prometheus scrapes herd's pods where herd serves that series: the
	// Deployment's scrape annotations name the admin port and /metrics.
	m := render(t, "base")
	if len(m.deployments) != 1 || len(m.hpas) != 1 {
		t.Fatalf("base: want one Deployment and one HPA; got %d and %d", len(m.deployments), len(m.hpas))
	}
	pod := m.deployments[0].Spec.Template
	var adminPort int32
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == "admin" {
				adminPort = p.ContainerPort
			}
		}
	}
	ann := pod.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != strconv.Itoa(int(adminPort)) {
		t.Errorf("herd's pods are annotated %v; want scrape true, path /metrics, port %d (admin, where herd serves %s)", ann, adminPort, series)
	}

	// The name the adapter serves is the HPA's Pods metric.
	re, err := regexp.Compile(rule.Name.Matches)
	if err != nil {
		t.Fatalf("name.matches %q: %v", rule.Name.Matches, err)
	}
	if !re.MatchString(series) {
		t.Fatalf("name.matches %q does not match the series %s", rule.Name.Matches, series)
	}
	as := rule.Name.As
	if as == "" {
		as = "$0" // the adapter's default with no capture group
		if re.NumSubexp() == 1 {
			as = "$1"
		}
	}
	metric := re.ReplaceAllString(series, as)
	var hpaMetrics []string
	for _, mt := range m.hpas[0].Spec.Metrics {
		if mt.Type == autoscalingv2.PodsMetricSourceType {
			hpaMetrics = append(hpaMetrics, mt.Pods.Metric.Name)
		}
	}
	if len(hpaMetrics) != 1 || hpaMetrics[0] != metric {
		t.Errorf("the adapter serves %s; the HPA's Pods metrics are %v", metric, hpaMetrics)
	}

	// metricsQuery: a valid template of the adapter's (<< >> delimiters)
	// that rates the counter, filtered to and grouped by the objects asked.
	tmpl, err := template.New("metricsQuery").Delims("<<", ">>").Option("missingkey=error").Parse(rule.MetricsQuery)
	if err != nil {
		t.Fatalf("metricsQuery %q: %v", rule.MetricsQuery, err)
	}
	var q strings.Builder
	args := struct{ Series, LabelMatchers, GroupBy string }{series, `namespace="herd",pod=~"herd-.*"`, "pod"}
	if err := tmpl.Execute(&q, args); err != nil {
		t.Fatalf("metricsQuery %q: %v", rule.MetricsQuery, err)
	}
	rate := regexp.MustCompile(`rate\(` + regexp.QuoteMeta(series+"{"+args.LabelMatchers+"}") + `\[[0-9]+[smh]\]\)`)
	if !rate.MatchString(q.String()) || !strings.Contains(q.String(), "by ("+args.GroupBy+")") {
		t.Errorf("metricsQuery renders as %q; want a rate of %s{LabelMatchers} grouped by GroupBy", q.String(), series)
	}
}

// herdSeries is every series herd's admin registry exports, with its
// labels, one of each present (as internal/admin's Grafana test does).
func herdSeries(t *testing.T) map[string]map[string]bool {
	t.Helper()
	status := func() []supervisor.AppStatus {
		return []supervisor.AppStatus{{Name: "web", Instances: []supervisor.InstanceStatus{{Index: 0, State: supervisor.Ready}}}}
	}
	m := admin.NewMetrics(status)
	m.ObserveRequest("/", "web", 200, time.Millisecond)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for _, f := range families {
		labels := map[string]bool{}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		out[f.GetName()] = labels
	}
	return out
}

// parseSelector splits a PromQL series selector, name{l="v",m!=""}, into
// the metric name and the labels it matches on.
func parseSelector(t *testing.T, sel string) (string, []string) {
	t.Helper()
	whole := regexp.MustCompile(`^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$`)
	m := whole.FindStringSubmatch(sel)
	if m == nil {
		t.Fatalf("seriesQuery %q: want one metric name with optional {matchers}", sel)
	}
	var labels []string
	matcher := regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"[^"]*"\s*$`)
	if strings.TrimSpace(m[2]) != "" {
		for part := range strings.SplitSeq(m[2], ",") {
			lm := matcher.FindStringSubmatch(part)
			if lm == nil {
				t.Fatalf("seriesQuery %q: cannot read the matcher %q", sel, part)
			}
			labels = append(labels, lm[1])
		}
	}
	return m[1], labels
}
