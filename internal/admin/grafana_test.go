package admin

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/supervisor"
)

// The Grafana dashboard in deploy/grafana queries only metrics herd really
// exports, with labels they really have.
func TestGrafanaDashboardMatchesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("../../deploy/grafana/herd.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("deploy/grafana/herd.json: %v", err)
	}
	// What herd exports, with one of each series present.
	status := func() []supervisor.AppStatus {
		return []supervisor.AppStatus{{Name: "web", Instances: []supervisor.InstanceStatus{{Index: 0, State: supervisor.Ready,
			Pid: 1, StartedAt: time.Now(), ReadyAfterSeconds: 0.1, LastExitCode: new(int),
			Lag: &supervisor.Lag{}, Requests: &balance.StatsSnapshot{}}}}}
	}
	m := NewMetrics(status)
	m.ObserveRequest("/", "web", 200, time.Millisecond)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]map[string]bool{} // series name → its labels
	for _, f := range families {
		names := []string{f.GetName()}
		if f.GetType().String() == "HISTOGRAM" {
			names = append(names, f.GetName()+"_bucket", f.GetName()+"_sum", f.GetName()+"_count")
		}
		for _, n := range names {
			labels[n] = map[string]bool{"le": strings.HasSuffix(n, "_bucket")}
			for _, mt := range f.GetMetric() {
				for _, l := range mt.GetLabel() {
					labels[n][l.GetName()] = true
				}
			}
		}
	}
	metricRE := regexp.MustCompile(`\b(herd_[a-z_]+)(\{[^}]*\})?`)
	labelRE := regexp.MustCompile(`([a-z_]+)\s*(=~|!=|!~|=)`)
	byRE := regexp.MustCompile(`by \(([^)]*)\)`)
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok {
			exprs = append(exprs, q)
		}
	}
	for _, e := range exprs {
		found := metricRE.FindAllStringSubmatch(e, -1)
		for _, m := range found {
			have, ok := labels[m[1]]
			if !ok {
				t.Errorf("%q queries %s, which herd does not export", e, m[1])
				continue
			}
			for _, l := range labelRE.FindAllStringSubmatch(m[2], -1) {
				if !have[l[1]] {
					t.Errorf("%q filters %s on label %q, which it does not have", e, m[1], l[1])
				}
			}
			for _, by := range byRE.FindAllStringSubmatch(e, -1) {
				for _, l := range strings.Split(by[1], ",") {
					if l = strings.TrimSpace(l); l != "" && !have[l] {
						t.Errorf("%q groups %s by %q, which it does not have", e, m[1], l)
					}
				}
			}
		}
		if len(found) == 0 && strings.Contains(e, "herd") {
			t.Errorf("cannot read the metric in %q", e)
		}
	}
	if len(exprs) < 10 {
		t.Errorf("the dashboard has %d queries; want the overview's panels", len(exprs))
	}
}
