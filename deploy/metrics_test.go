package deploy

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var metricName = regexp.MustCompile(`\bclasspulse_[a-z0-9_]+\b`)

// exportedMetrics collects the Prometheus series names the repository's Go
// code (outside deploy/ and tests) can expose: the fully qualified name of
// every *Opts literal (Namespace_Subsystem_Name, as prometheus.BuildFQName
// joins them), every prometheus.NewDesc name, and any string constant that
// is a whole classpulse_ name. Histograms add _bucket, _sum and _count;
// summaries _sum and _count.
func exportedMetrics(t *testing.T, root string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "deploy", "testdata", "vendor", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				kind := typeName(n.Type)
				if !strings.HasSuffix(kind, "Opts") {
					return true
				}
				parts := map[string]string{}
				for _, e := range n.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					if k, ok := kv.Key.(*ast.Ident); ok {
						if s, ok := stringLit(kv.Value); ok {
							parts[k.Name] = s
						}
					}
				}
				if parts["Name"] == "" {
					return true
				}
				var fq []string
				for _, p := range []string{parts["Namespace"], parts["Subsystem"], parts["Name"]} {
					if p != "" {
						fq = append(fq, p)
					}
				}
				name := strings.Join(fq, "_")
				names[name] = true
				switch kind {
				case "HistogramOpts":
					names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
				case "SummaryOpts":
					names[name+"_sum"], names[name+"_count"] = true, true
				}
			case *ast.CallExpr:
				if typeName(n.Fun) == "NewDesc" && len(n.Args) > 0 {
					if s, ok := stringLit(n.Args[0]); ok {
						names[s] = true
					}
				}
			case *ast.BasicLit:
				if s, ok := stringLit(n); ok && metricName.FindString(s) == s {
					names[s] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for n := range names {
		if !strings.HasPrefix(n, "classpulse_") {
			delete(names, n)
		}
	}
	return names
}

func typeName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	}
	return ""
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// contractMetrics reads the metric table of docs/architecture.md, the
// contract the code implements.
func contractMetrics(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(classpulse_[a-z0-9_]+)` \\| (counter|gauge|histogram|summary) \\|")
	names := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(data), -1) {
		names[m[1]] = true
		switch m[2] {
		case "histogram":
			names[m[1]+"_bucket"], names[m[1]+"_sum"], names[m[1]+"_count"] = true, true, true
		case "summary":
			names[m[1]+"_sum"], names[m[1]+"_count"] = true, true
		}
	}
	if len(names) == 0 {
		t.Fatal("no metric table found in docs/architecture.md")
	}
	return names
}

// knownMetrics is what dashboards and alerts may name: what the Go code
// exports. Before any Go code exports a classpulse metric (a fresh
// checkout mid-build), the contract table stands in for it.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	exported := exportedMetrics(t, "..")
	if len(exported) == 0 {
		t.Log("no classpulse metric in the Go sources yet: checking against docs/architecture.md")
		return contractMetrics(t)
	}
	return exported
}

// queriesIn returns every "expr" string anywhere in a decoded JSON value.
func queriesIn(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "expr" {
				out = append(out, s)
			} else {
				out = append(out, queriesIn(x)...)
			}
		}
	case []any:
		for _, x := range v {
			out = append(out, queriesIn(x)...)
		}
	}
	return out
}

func dashboardQueries(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("grafana", "dashboards", "classpulse.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d any
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("classpulse.json: %v", err)
	}
	qs := queriesIn(d)
	if len(qs) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	return qs
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert,omitempty"`
			Record      string            `json:"record,omitempty"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("prometheus", "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(data, &rf); err != nil {
		t.Fatalf("rules.yml: %v", err)
	}
	return rf
}

func TestDashboardAndAlertsNameOnlyExportedMetrics(t *testing.T) {
	known := knownMetrics(t)
	sources := map[string][]string{"grafana/dashboards/classpulse.json": dashboardQueries(t)}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			sources["prometheus/rules.yml"] = append(sources["prometheus/rules.yml"], r.Expr)
		}
	}
	m := loadManifests(t)
	for _, h := range m.hpas {
		for _, mt := range h.Spec.Metrics {
			if mt.External != nil {
				sources["k8s HPA "+h.Name] = append(sources["k8s HPA "+h.Name], mt.External.Metric.Name)
			}
			if mt.Pods != nil {
				sources["k8s HPA "+h.Name] = append(sources["k8s HPA "+h.Name], mt.Pods.Metric.Name)
			}
		}
	}
	if cm := m.configMaps["classpulse-prometheus-adapter"]; cm != nil {
		sources["k8s prometheus-adapter"] = []string{cm.Data["config.yaml"]}
	}
	for where, exprs := range sources {
		for _, e := range exprs {
			for _, name := range metricName.FindAllString(e, -1) {
				if !known[name] {
					t.Errorf("%s names %s, which the code does not export:\n%s", where, name, e)
				}
			}
		}
	}
}

// Every metric of the contract is on the dashboard, so an SRE sees it
// without writing a query.
func TestDashboardShowsEveryContractMetric(t *testing.T) {
	used := map[string]bool{}
	for _, q := range dashboardQueries(t) {
		for _, n := range metricName.FindAllString(q, -1) {
			used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] = true
		}
	}
	for name := range contractMetrics(t) {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if !used[base] {
			t.Errorf("the dashboard does not show %s", base)
		}
	}
}

// The exporter scan must find what the code registers, or the test above
// would compare against nothing.
func TestExportedMetricsFindsEveryOptsForm(t *testing.T) {
	dir := t.TempDir()
	src := `package x
import "github.com/prometheus/client_golang/prometheus"
const lagName = "classpulse_demo_lag"
var (
	a = prometheus.CounterOpts{Name: "classpulse_demo_events_total"}
	b = prometheus.HistogramOpts{Namespace: "classpulse", Subsystem: "demo", Name: "latency_seconds"}
	c = prometheus.NewDesc("classpulse_demo_up", "", nil, nil)
	d = prometheus.GaugeOpts{Name: lagName}
	e = prometheus.SummaryOpts{Name: "classpulse_demo_size"}
	f = "classpulse:live:warnings"
)
`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := exportedMetrics(t, dir)
	var names []string
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{
		"classpulse_demo_events_total", "classpulse_demo_lag",
		"classpulse_demo_latency_seconds", "classpulse_demo_latency_seconds_bucket",
		"classpulse_demo_latency_seconds_count", "classpulse_demo_latency_seconds_sum",
		"classpulse_demo_size", "classpulse_demo_size_count", "classpulse_demo_size_sum",
		"classpulse_demo_up",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("exportedMetrics = %v\nwant %v", names, want)
	}
}

// promtool parses every dashboard query (as a recording rule, with
// Grafana's $__rate_interval replaced), so a PromQL typo fails here rather
// than as an empty panel.
func TestDashboardQueriesAreValidPromQL(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (make deploy-check installs the prometheus package)")
	}
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range dashboardQueries(t) {
		q = strings.ReplaceAll(q, "$__rate_interval", "5m")
		quoted, _ := json.Marshal(q)
		fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", i, quoted)
	}
	path := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

func TestEveryAlertHasSeverityAndRunbook(t *testing.T) {
	docs, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	headings := map[string]bool{}
	for _, l := range strings.Split(string(docs), "\n") {
		if h, ok := strings.CutPrefix(l, "### Runbook: "); ok {
			headings[strings.TrimSpace(h)] = true
		}
	}
	var alerts int
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: summary and description annotations are required", r.Alert)
			}
			// GitHub's anchor for "### Runbook: Name" is "runbook-name".
			want := "docs/operations.md#runbook-" + strings.ToLower(r.Alert)
			if r.Annotations["runbook_url"] != want {
				t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
			}
			if !headings[r.Alert] {
				t.Errorf("%s: docs/operations.md has no \"### Runbook: %s\" section", r.Alert, r.Alert)
			}
		}
	}
	if alerts == 0 {
		t.Fatal("no alerts in rules.yml")
	}
}

// prometheus-k8s.yml cannot be checked by Debian's promtool (no Kubernetes
// service discovery), so its shape is checked here: the jobs the alert
// rules name, and the namespace label the HPA's adapter maps.
func TestKubernetesScrapeConfigFeedsRulesAndHPA(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("prometheus", "prometheus-k8s.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Global struct {
			ScrapeInterval     string `json:"scrape_interval"`
			EvaluationInterval string `json:"evaluation_interval"`
		} `json:"global"`
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			JobName             string `json:"job_name"`
			KubernetesSDConfigs []struct {
				Role       string `json:"role"`
				Namespaces struct {
					Names []string `json:"names"`
				} `json:"namespaces"`
			} `json:"kubernetes_sd_configs"`
			RelabelConfigs []struct {
				SourceLabels []string `json:"source_labels"`
				Regex        string   `json:"regex,omitempty"`
				Action       string   `json:"action,omitempty"`
				TargetLabel  string   `json:"target_label,omitempty"`
			} `json:"relabel_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		t.Fatalf("prometheus-k8s.yml: %v", err)
	}
	if !slices.Contains(cfg.RuleFiles, "rules.yml") {
		t.Error("prometheus-k8s.yml does not load rules.yml")
	}
	m := loadManifests(t)
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = true
		d := m.deployments[sc.JobName]
		if d == nil {
			t.Errorf("job %s: no Deployment of that name", sc.JobName)
			continue
		}
		var keepsApp, keepsPort bool
		targets := map[string]bool{}
		for _, r := range sc.RelabelConfigs {
			if r.Action == "keep" && slices.Contains(r.SourceLabels, "__meta_kubernetes_pod_label_app_kubernetes_io_name") {
				keepsApp = r.Regex == d.Spec.Template.Labels["app.kubernetes.io/name"]
			}
			if r.Action == "keep" && slices.Contains(r.SourceLabels, "__meta_kubernetes_pod_container_port_name") {
				keepsPort = hasContainerPort(d, r.Regex)
			}
			if r.TargetLabel != "" {
				targets[r.TargetLabel] = true
			}
		}
		if !keepsApp || !keepsPort {
			t.Errorf("job %s does not keep exactly the %s pods' named metrics port", sc.JobName, sc.JobName)
		}
		if !targets["namespace"] || !targets["pod"] {
			t.Errorf("job %s does not set the namespace and pod labels", sc.JobName)
		}
	}
	for _, want := range []string{"classpulse-processor", "classpulse-dashboard"} {
		if !jobs[want] {
			t.Errorf("no scrape job %s", want)
		}
	}
}

// Each alert has at least one promtool case where it fires, so a rule that
// can never fire (a wrong label, a unit slip) fails `make deploy-check`.
func TestEveryAlertIsUnitTestedFiring(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("prometheus", "rules_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rt struct {
		RuleFiles          []string `json:"rule_files"`
		EvaluationInterval string   `json:"evaluation_interval"`
		Tests              []struct {
			Interval    string `json:"interval"`
			InputSeries []struct {
				Series string `json:"series"`
				Values string `json:"values"`
			} `json:"input_series"`
			AlertRuleTest []struct {
				EvalTime  string `json:"eval_time"`
				Alertname string `json:"alertname"`
				ExpAlerts []struct {
					ExpLabels      map[string]string `json:"exp_labels"`
					ExpAnnotations map[string]string `json:"exp_annotations"`
				} `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.UnmarshalStrict(data, &rt); err != nil {
		t.Fatalf("rules_test.yml: %v", err)
	}
	fires := map[string]bool{}
	for _, tc := range rt.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert != "" && !fires[r.Alert] {
				t.Errorf("%s: no case in rules_test.yml where it fires", r.Alert)
			}
		}
	}
}
