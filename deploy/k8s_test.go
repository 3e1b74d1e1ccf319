package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/classpulse/classpulse/notify"
	"github.com/classpulse/classpulse/rules"
)

// k8sDir holds the manifests `kubectl apply -k` installs. external/ holds
// the Strimzi resources, which are not Kubernetes API types.
const k8sDir = "k8s"

// newObject returns an empty API object for a document's apiVersion and
// kind. A kind missing here fails the test: add it with its Go type, so a
// new manifest cannot slip past strict decoding.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}, nil
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/Secret":
		return &corev1.Secret{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "networking.k8s.io/v1/Ingress":
		return &networkingv1.Ingress{}, nil
	}
	return nil, fmt.Errorf("no API type for apiVersion %q kind %q", apiVersion, kind)
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocs returns the non-empty YAML documents of a multi-document file.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// decodeManifest decodes one document strictly: an unknown or misspelt
// field, a duplicate key or a wrongly typed value is an error.
func decodeManifest(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	obj, err := newObject(tm.APIVersion, tm.Kind)
	if err != nil {
		return nil, err
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

// manifests holds every decoded object of k8s/, by kind and name.
type manifests struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs        map[string]*policyv1.PodDisruptionBudget
	ingresses   map[string]*networkingv1.Ingress
	namespaces  map[string]*corev1.Namespace
	files       []string
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
		ingresses: map[string]*networkingv1.Ingress{}, namespaces: map[string]*corev1.Namespace{},
	}
	paths, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if filepath.Base(p) == "kustomization.yaml" {
			continue
		}
		m.files = append(m.files, filepath.Base(p))
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocs(data) {
			obj, err := decodeManifest(doc)
			if err != nil {
				t.Errorf("%s document %d: %v", p, i+1, err)
				continue
			}
			var name string
			switch o := obj.(type) {
			case *appsv1.Deployment:
				name, m.deployments[o.Name] = o.Name, o
			case *corev1.Service:
				name, m.services[o.Name] = o.Name, o
			case *corev1.ConfigMap:
				name, m.configMaps[o.Name] = o.Name, o
			case *corev1.Secret:
				name, m.secrets[o.Name] = o.Name, o
			case *autoscalingv2.HorizontalPodAutoscaler:
				name, m.hpas[o.Name] = o.Name, o
			case *policyv1.PodDisruptionBudget:
				name, m.pdbs[o.Name] = o.Name, o
			case *networkingv1.Ingress:
				name, m.ingresses[o.Name] = o.Name, o
			case *corev1.Namespace:
				name, m.namespaces[o.Name] = o.Name, o
			}
			if name == "" {
				t.Errorf("%s document %d: no metadata.name", p, i+1)
			}
		}
	}
	if len(m.deployments) == 0 {
		t.Fatal("no Deployment found under k8s/")
	}
	return m
}

func TestManifestsDecodeStrictlyIntoAPITypes(t *testing.T) {
	m := loadManifests(t)
	for _, name := range []string{"classpulse-processor", "classpulse-dashboard"} {
		if m.deployments[name] == nil {
			t.Errorf("Deployment %s missing", name)
		}
		if m.hpas[name] == nil {
			t.Errorf("HorizontalPodAutoscaler %s missing", name)
		}
		if m.pdbs[name] == nil {
			t.Errorf("PodDisruptionBudget %s missing", name)
		}
	}
	if m.services["classpulse-dashboard"] == nil || m.ingresses["classpulse-dashboard"] == nil {
		t.Error("dashboard Service or Ingress missing")
	}
	for _, name := range []string{"classpulse-config", "classpulse-policy"} {
		if m.configMaps[name] == nil {
			t.Errorf("ConfigMap %s missing", name)
		}
	}
	if m.secrets["classpulse-token-keys"] == nil {
		t.Error("Secret classpulse-token-keys missing")
	}
}

// The decoder must reject what the API server would reject or silently
// drop; otherwise the strict test above proves nothing.
func TestStrictDecodingRejectsMistakes(t *testing.T) {
	tests := []struct {
		name string
		doc  string
	}{
		{"misspelt field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n"},
		{"field at the wrong level", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nports: []\n"},
		{"wrong value type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: two\n"},
		{"duplicate key", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n"},
		{"unknown kind", "apiVersion: v1\nkind: Deploymnet\nmetadata: {name: x}\n"},
		{"old API version", "apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeManifest([]byte(tt.doc)); err == nil {
				t.Fatalf("decoded without error:\n%s", tt.doc)
			}
		})
	}
	if _, err := decodeManifest([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n")); err != nil {
		t.Fatalf("a correct ConfigMap was rejected: %v", err)
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
		Images     []struct {
			Name   string `json:"name"`
			NewTag string `json:"newTag"`
		} `json:"images"`
	}
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	m := loadManifests(t)
	got := slices.Clone(k.Resources)
	sort.Strings(got)
	want := slices.Clone(m.files)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources = %v, files in k8s/ = %v", got, want)
	}
	for _, img := range k.Images {
		for _, d := range m.deployments {
			for _, c := range d.Spec.Template.Spec.Containers {
				if strings.HasPrefix(c.Image, img.Name+":") && c.Image != img.Name+":"+img.NewTag {
					t.Errorf("%s uses %s but kustomization pins %s:%s", d.Name, c.Image, img.Name, img.NewTag)
				}
			}
		}
	}
}

func TestSelectorsMatchTheirPods(t *testing.T) {
	m := loadManifests(t)
	podsOf := func(sel *metav1.LabelSelector) []string {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil || s.Empty() {
			return nil
		}
		var names []string
		for _, d := range m.deployments {
			if s.Matches(labels.Set(d.Spec.Template.Labels)) {
				names = append(names, d.Name)
			}
		}
		return names
	}
	for _, d := range m.deployments {
		if got := podsOf(d.Spec.Selector); !slices.Equal(got, []string{d.Name}) {
			t.Errorf("Deployment %s: selector matches the pods of %v, want only its own", d.Name, got)
		}
	}
	for _, p := range m.pdbs {
		if got := podsOf(p.Spec.Selector); !slices.Equal(got, []string{p.Name}) {
			t.Errorf("PodDisruptionBudget %s selects the pods of %v", p.Name, got)
		}
	}
	for _, s := range m.services {
		if got := podsOf(&metav1.LabelSelector{MatchLabels: s.Spec.Selector}); len(got) != 1 {
			t.Errorf("Service %s selects the pods of %v, want one Deployment", s.Name, got)
		} else {
			for _, p := range s.Spec.Ports {
				if !hasContainerPort(m.deployments[got[0]], p.TargetPort.String()) {
					t.Errorf("Service %s targets port %s, which %s does not declare", s.Name, p.TargetPort.String(), got[0])
				}
			}
		}
	}
	for _, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || m.deployments[ref.Name] == nil {
			t.Errorf("HPA %s scales %s/%s, which is not a Deployment here", h.Name, ref.Kind, ref.Name)
		}
	}
	for _, ing := range m.ingresses {
		for _, r := range ing.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				svc := m.services[p.Backend.Service.Name]
				if svc == nil {
					t.Errorf("Ingress %s routes to unknown Service %s", ing.Name, p.Backend.Service.Name)
					continue
				}
				if !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == p.Backend.Service.Port.Name }) {
					t.Errorf("Ingress %s uses port %q, which Service %s does not name", ing.Name, p.Backend.Service.Port.Name, svc.Name)
				}
			}
		}
	}
}

func hasContainerPort(d *appsv1.Deployment, port string) bool {
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
				return true
			}
		}
	}
	return false
}

func TestPodsAreHardenedSizedAndProbed(t *testing.T) {
	m := loadManifests(t)
	for _, d := range m.deployments {
		spec := d.Spec.Template.Spec
		if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: pod does not require runAsNonRoot", d.Name)
		}
		if len(spec.Containers) == 0 {
			t.Errorf("%s: no containers", d.Name)
		}
		for _, c := range spec.Containers {
			where := d.Name + "/" + c.Name
			if i := strings.LastIndex(c.Image, ":"); i < 0 || strings.HasSuffix(c.Image, ":latest") {
				t.Errorf("%s: image %q is not pinned to a tag", where, c.Image)
			}
			req := c.Resources.Requests
			if req.Cpu().IsZero() || req.Memory().IsZero() {
				t.Errorf("%s: cpu and memory requests are required (sized in docs/operations.md)", where)
			}
			if c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: no memory limit", where)
			}
			if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: want readOnlyRootFilesystem and no privilege escalation", where)
			}
			probes := map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
			wantPath := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}
			for kind, p := range probes {
				if p == nil || p.HTTPGet == nil {
					t.Errorf("%s: no HTTP %s probe", where, kind)
					continue
				}
				if p.HTTPGet.Path != wantPath[kind] {
					t.Errorf("%s: %s probe on %s, want %s", where, kind, p.HTTPGet.Path, wantPath[kind])
				}
				if !hasContainerPort(d, p.HTTPGet.Port.String()) {
					t.Errorf("%s: %s probe on undeclared port %s", where, kind, p.HTTPGet.Port.String())
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil && m.configMaps[ef.ConfigMapRef.Name] == nil {
					t.Errorf("%s: envFrom ConfigMap %s does not exist", where, ef.ConfigMapRef.Name)
				}
			}
			for _, vm := range c.VolumeMounts {
				if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name }) {
					t.Errorf("%s: mounts undeclared volume %s", where, vm.Name)
				}
			}
		}
		for _, v := range spec.Volumes {
			if v.ConfigMap != nil && m.configMaps[v.ConfigMap.Name] == nil {
				t.Errorf("%s: volume %s uses missing ConfigMap %s", d.Name, v.Name, v.ConfigMap.Name)
			}
			if v.Secret != nil && m.secrets[v.Secret.SecretName] == nil {
				t.Errorf("%s: volume %s uses missing Secret %s", d.Name, v.Name, v.Secret.SecretName)
			}
		}
	}
}

func TestProcessorScalesOnConsumerLagUpToThePartitions(t *testing.T) {
	m := loadManifests(t)
	h := m.hpas["classpulse-processor"]
	if h == nil {
		t.Fatal("no processor HPA")
	}
	var found bool
	for _, mt := range h.Spec.Metrics {
		switch mt.Type {
		case autoscalingv2.ExternalMetricSourceType:
			found = found || mt.External.Metric.Name == "classpulse_processor_consumer_lag"
		case autoscalingv2.PodsMetricSourceType:
			found = found || mt.Pods.Metric.Name == "classpulse_processor_consumer_lag"
		}
	}
	if !found {
		t.Error("processor HPA does not scale on classpulse_processor_consumer_lag")
	}
	topics := loadTopicTable(t)
	scores := topics["classpulse.scores.v1"].partitions
	if h.Spec.MaxReplicas != int32(scores) {
		t.Errorf("processor HPA maxReplicas = %d, want the %d partitions of classpulse.scores.v1: more pods would idle", h.Spec.MaxReplicas, scores)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
		t.Error("processor HPA must keep at least 2 replicas so a pod loss only rebalances")
	}
	adapter := m.configMaps["classpulse-prometheus-adapter"]
	if adapter == nil || !strings.Contains(adapter.Data["config.yaml"], `as: "classpulse_processor_consumer_lag"`) {
		t.Error("prometheus-adapter ConfigMap does not serve classpulse_processor_consumer_lag as an external metric")
	}
}

func TestPolicyConfigMapLoadsInTheRulesEngine(t *testing.T) {
	m := loadManifests(t)
	cm := m.configMaps["classpulse-policy"]
	if cm == nil {
		t.Fatal("no classpulse-policy ConfigMap")
	}
	data, ok := cm.Data["policy.yaml"]
	if !ok {
		t.Fatal("classpulse-policy has no policy.yaml key")
	}
	if _, err := rules.LoadPolicy([]byte(data), "k8s/policy.yaml"); err != nil {
		t.Fatalf("policy in the ConfigMap does not load: %v", err)
	}
	d := m.deployments["classpulse-processor"]
	want := "/etc/classpulse/policy/policy.yaml"
	c := d.Spec.Template.Spec.Containers[0]
	if v := envValue(c.Env, "CLASSPULSE_POLICY"); v != want {
		t.Errorf("processor CLASSPULSE_POLICY = %q, want %q (the ConfigMap's key under its mount)", v, want)
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
		return vm.MountPath == filepath.Dir(want)
	}) {
		t.Errorf("processor does not mount the policy at %s", filepath.Dir(want))
	}
}

func envValue(env []corev1.EnvVar, name string) string {
	for _, e := range env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// The committed Secret only declares the shape; a real key in git would be
// a leak.
func TestTokenSecretCarriesNoKey(t *testing.T) {
	s := loadManifests(t).secrets["classpulse-token-keys"]
	if s == nil {
		t.Fatal("no token Secret")
	}
	for k, v := range s.StringData {
		if v != "" {
			t.Errorf("Secret key %s has a committed value", k)
		}
	}
	for k, v := range s.Data {
		if len(bytes.TrimSpace(v)) > 0 {
			t.Errorf("Secret key %s has a committed value", k)
		}
	}
}

func TestRoutesConfigMapLoadsInTheNotifier(t *testing.T) {
	m := loadManifests(t)
	cm := m.configMaps["classpulse-routes"]
	if cm == nil {
		t.Fatal("no classpulse-routes ConfigMap")
	}
	path := filepath.Join(t.TempDir(), "routes.json")
	if err := os.WriteFile(path, []byte(cm.Data["routes.json"]), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := notify.LoadConfig(path)
	if err != nil {
		t.Fatalf("routes in the ConfigMap do not load: %v", err)
	}
	c.Brokers = []string{configMapData(m.configMaps["classpulse-config"])["CLASSPULSE_BROKERS"]} // from the environment, as in the pod
	if err := c.Validate(); err != nil {
		t.Fatalf("routes in the ConfigMap do not validate: %v", err)
	}
	for _, name := range []string{"classpulse-notify", "classpulse-followup"} {
		d := m.deployments[name]
		if d == nil || m.pdbs[name] == nil {
			t.Errorf("Deployment or PodDisruptionBudget %s missing", name)
			continue
		}
		args := strings.Join(d.Spec.Template.Spec.Containers[0].Args, " ")
		if !strings.Contains(args, "--routes /etc/classpulse/routes/routes.json") {
			t.Errorf("%s args %q do not read the mounted routing file", name, args)
		}
	}
}
