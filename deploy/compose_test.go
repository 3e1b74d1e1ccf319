package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// composeFile is the part of the compose specification classpulse uses.
// Decoding is strict (KnownFields), so a misspelt key fails the test, as
// `docker compose config` would fail on a machine that has Docker.
type composeFile struct {
	Name        string                    `yaml:"name"`
	XClasspulse any                       `yaml:"x-classpulse"`
	Services    map[string]composeService `yaml:"services"`
	Volumes     map[string]*struct{}      `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string            `yaml:"context"`
		Dockerfile string            `yaml:"dockerfile"`
		Args       map[string]string `yaml:"args"`
	} `yaml:"build"`
	Command         []string          `yaml:"command"`
	Entrypoint      []string          `yaml:"entrypoint"`
	Environment     map[string]string `yaml:"environment"`
	Restart         string            `yaml:"restart"`
	ReadOnly        bool              `yaml:"read_only"`
	Ports           []string          `yaml:"ports"`
	Volumes         []string          `yaml:"volumes"`
	Profiles        []string          `yaml:"profiles"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	DependsOn       map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Deploy *struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
}

func decodeCompose(data []byte) (*composeFile, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c composeFile
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := decodeCompose(data)
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

func TestComposeDecodingRejectsMistakes(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"misspelt service key", "services:\n  a:\n    image: x\n    helthcheck: {test: [CMD, true]}\n"},
		{"unknown depends_on field", "services:\n  a:\n    image: x\n    depends_on:\n      b: {condtion: service_started}\n"},
		{"replicas as text", "services:\n  a:\n    image: x\n    deploy: {replicas: two}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeCompose([]byte(tt.doc)); err == nil {
				t.Fatalf("decoded without error:\n%s", tt.doc)
			}
		})
	}
}

func TestComposeRunsTheWholeStack(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"kafka", "kafka-init", "redis", "processor", "dashboard", "proxy", "prometheus", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	for _, name := range []string{"processor", "dashboard"} {
		s := c.Services[name]
		if s.Deploy == nil || s.Deploy.Replicas < 2 {
			t.Errorf("%s: want at least 2 replicas", name)
		}
		if s.Build == nil || s.Build.Dockerfile != "deploy/docker/classpulse.Dockerfile" {
			t.Errorf("%s: must build from deploy/docker/classpulse.Dockerfile", name)
		}
		if len(s.Command) == 0 || s.Command[0] != name {
			t.Errorf("%s: command %v does not run `classpulse %s`", name, s.Command, name)
		}
		if s.Environment["CLASSPULSE_BROKERS"] != "kafka:9092" || s.Environment["CLASSPULSE_REDIS"] != "redis:6379" {
			t.Errorf("%s: CLASSPULSE_BROKERS/CLASSPULSE_REDIS do not point at the kafka and redis services", name)
		}
		if s.DependsOn["kafka-init"].Condition != "service_completed_successfully" {
			t.Errorf("%s: must wait for the topics (kafka-init completed)", name)
		}
	}
	kafka := c.Services["kafka"]
	if !strings.Contains(kafka.Environment["KAFKA_PROCESS_ROLES"], "controller") || kafka.Environment["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "" {
		t.Error("kafka: not configured for KRaft (process roles with controller, quorum voters)")
	}
	for k := range kafka.Environment {
		if strings.Contains(strings.ToLower(k), "zookeeper") {
			t.Errorf("kafka: %s: KRaft mode has no ZooKeeper", k)
		}
	}
	if kafka.Environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] != "false" {
		t.Error("kafka: auto topic creation must be off so topics get their planned partitions")
	}
	redis := strings.Join(c.Services["redis"].Command, " ")
	if !strings.Contains(redis, "--appendonly yes") {
		t.Errorf("redis: AOF not enabled: %s", redis)
	}
	if !strings.Contains(redis, "noeviction") {
		t.Errorf("redis: state must never be evicted: %s", redis)
	}
	init := c.Services["kafka-init"]
	if init.Restart != "no" || !slices.Contains(init.Entrypoint, "/classpulse/create-topics.sh") {
		t.Error("kafka-init: must run create-topics.sh once")
	}
}

func TestComposeDependenciesHealthchecksAndVolumes(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("%s: neither image nor build", name)
		}
		if s.Build != nil {
			if filepath.Clean(s.Build.Context) != ".." {
				t.Errorf("%s: build context %s is not the repository root", name, s.Build.Context)
			}
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s: Dockerfile: %v", name, err)
			}
		}
		if s.Image != "" && (!strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest")) {
			t.Errorf("%s: image %q is not pinned", name, s.Image)
		}
		oneShot := s.Restart == "no"
		if !oneShot && (s.Healthcheck == nil || len(s.Healthcheck.Test) < 2) {
			t.Errorf("%s: long-running service without a healthcheck", name)
		}
		for dep, cond := range s.DependsOn {
			target, ok := c.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
				continue
			}
			switch cond.Condition {
			case "service_started":
			case "service_healthy":
				if target.Healthcheck == nil {
					t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			case "service_completed_successfully":
				if target.Restart != "no" {
					t.Errorf("%s waits for %s to complete, but %s restarts", name, dep, dep)
				}
			default:
				t.Errorf("%s: depends_on %s: unknown condition %q", name, dep, cond.Condition)
			}
		}
		for _, v := range s.Volumes {
			src, _, ok := strings.Cut(v, ":")
			if !ok {
				t.Errorf("%s: volume %q has no target", name, v)
				continue
			}
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("%s: bind mount source: %v", name, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s: named volume %s is not declared", name, src)
			}
		}
	}
	// The distroless image has no shell: its healthchecks must exec the
	// probe binary the Dockerfile copies in.
	df, err := os.ReadFile(filepath.Join("docker", "classpulse.Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"processor", "dashboard"} {
		hc := c.Services[name].Healthcheck
		if hc == nil || hc.Test[0] != "CMD" || !strings.Contains(string(df), hc.Test[1]) {
			t.Errorf("%s: healthcheck must exec a binary the image contains, got %v", name, hc)
		}
	}
}

func TestServerImageIsStaticWithoutOpenCV(t *testing.T) {
	df, err := os.ReadFile(filepath.Join("docker", "classpulse.Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(df)
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/classpulse", "FROM gcr.io/distroless/static"} {
		if !strings.Contains(s, want) {
			t.Errorf("classpulse.Dockerfile lacks %q", want)
		}
	}
	if strings.Contains(strings.ToLower(s), "opencv") && !strings.Contains(s, "No OpenCV") {
		t.Error("classpulse.Dockerfile mentions OpenCV; the server image must not need it")
	}
	if n := strings.Count(s, "\nFROM "); n < 2 {
		t.Errorf("classpulse.Dockerfile has %d stages, want a multi-stage build", n)
	}
	edge, err := os.ReadFile(filepath.Join("docker", "classpulse-edge.Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=1", "./cmd/classpulse-edge", "libopencv-dev", "bookworm"} {
		if !strings.Contains(string(edge), want) {
			t.Errorf("classpulse-edge.Dockerfile lacks %q", want)
		}
	}
}

func TestProxyUpgradesWebSocketsToTheDashboards(t *testing.T) {
	conf, err := os.ReadFile(filepath.Join("nginx", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(conf)
	for _, want := range []string{
		"proxy_http_version 1.1;",
		"proxy_set_header Upgrade $http_upgrade;",
		"proxy_set_header Connection $connection_upgrade;",
		"map $http_upgrade $connection_upgrade",
		"proxy_read_timeout",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("nginx.conf lacks %q", want)
		}
	}
	c := loadCompose(t)
	dash := c.Services["dashboard"]
	addr := dash.Command[slices.Index(dash.Command, "--addr")+1]
	if want := "http://dashboard" + addr; !strings.Contains(s, want) {
		t.Errorf("nginx.conf does not proxy to %s (the dashboard's --addr)", want)
	}
	if !slices.Contains(c.Services["proxy"].Volumes, "./nginx/nginx.conf:/etc/nginx/nginx.conf:ro") {
		t.Error("proxy does not mount nginx/nginx.conf")
	}
}

func TestPrometheusAndGrafanaFollowTheStack(t *testing.T) {
	c := loadCompose(t)
	data, err := os.ReadFile(filepath.Join("prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var pc struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName      string `yaml:"job_name"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &pc); err != nil {
		t.Fatal(err)
	}
	ports := map[string]string{"processor": "9090", "dashboard": "8080"}
	for svc, port := range ports {
		cmd := strings.Join(c.Services[svc].Command, " ")
		if !strings.Contains(cmd, ":"+port) {
			t.Errorf("%s does not serve on :%s (%s)", svc, port, cmd)
		}
		found := false
		for _, sc := range pc.ScrapeConfigs {
			for _, d := range sc.DNSSDConfigs {
				if slices.Contains(d.Names, svc) && strconv.Itoa(d.Port) == port {
					found = true
					if sc.JobName != "classpulse-"+svc {
						t.Errorf("job %s: the alert rules expect job=\"classpulse-%s\"", sc.JobName, svc)
					}
				}
			}
		}
		if !found {
			t.Errorf("prometheus.yml does not scrape %s:%s", svc, port)
		}
	}
	if !slices.Contains(pc.RuleFiles, "rules.yml") {
		t.Error("prometheus.yml does not load rules.yml")
	}
	for _, want := range []string{"./grafana/provisioning:/etc/grafana/provisioning:ro", "./grafana/dashboards:/var/lib/grafana/dashboards:ro"} {
		if !slices.Contains(c.Services["grafana"].Volumes, want) {
			t.Errorf("grafana does not mount %s", want)
		}
	}
	prov, err := os.ReadFile(filepath.Join("grafana", "provisioning", "dashboards", "classpulse.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^\s+path: /var/lib/grafana/dashboards$`).Match(prov) {
		t.Error("the dashboard provider does not read /var/lib/grafana/dashboards")
	}
	ds, err := os.ReadFile(filepath.Join("grafana", "provisioning", "datasources", "prometheus.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ds), "url: http://prometheus:9090") {
		t.Error("the Grafana datasource does not point at the prometheus service")
	}
}
