package deploy

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/classpulse/classpulse/stream"
)

type topicPlan struct {
	partitions  int
	retentionMs int64
}

// loadTopicTable reads kafka/topics.txt, the one table of partition counts
// and retention.
func loadTopicTable(t *testing.T) map[string]topicPlan {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("kafka", "topics.txt"))
	if err != nil {
		t.Fatal(err)
	}
	plans := map[string]topicPlan{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("topics.txt:%d: want topic, partitions, retention.ms; got %q", n, line)
		}
		p, err1 := strconv.Atoi(f[1])
		r, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || p < 1 || (r < 1 && r != -1) {
			t.Fatalf("topics.txt:%d: bad numbers in %q", n, line)
		}
		if _, dup := plans[f[0]]; dup {
			t.Fatalf("topics.txt:%d: %s listed twice", n, f[0])
		}
		plans[f[0]] = topicPlan{partitions: p, retentionMs: r}
	}
	return plans
}

func TestTopicTableCoversEveryTopicTheCodeUses(t *testing.T) {
	plans := loadTopicTable(t)
	var names []string
	for n := range plans {
		names = append(names, n)
	}
	slices.Sort(names)
	want := slices.Clone(stream.AllTopics)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("topics.txt lists %v, stream.AllTopics is %v", names, want)
	}
	// Co-partitioning: one consumer gets all input topics of a student.
	p := plans[stream.TopicScores].partitions
	for _, topic := range append(slices.Clone(stream.InputTopics), stream.TopicWarnings, stream.TopicInterventions) {
		if plans[topic].partitions != p {
			t.Errorf("%s has %d partitions, %s has %d: student-keyed topics must match", topic, plans[topic].partitions, stream.TopicScores, p)
		}
	}
	// Kafka is the source of truth (DESIGN.md §3): what Redis is rebuilt
	// from and what is kept for audit must not expire.
	for _, topic := range []string{stream.TopicGrades, stream.TopicConsent, stream.TopicWarnings, stream.TopicInterventions} {
		if plans[topic].retentionMs != -1 {
			t.Errorf("%s expires after %d ms; it must be kept", topic, plans[topic].retentionMs)
		}
	}
}

// strimziTopic is the part of a Strimzi KafkaTopic that classpulse sets.
// Decoding is strict so a misspelt field fails here, not in the operator.
type strimziTopic struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		TopicName  string         `json:"topicName,omitempty"`
		Partitions int            `json:"partitions"`
		Replicas   int            `json:"replicas"`
		Config     map[string]any `json:"config"`
	} `json:"spec"`
}

func TestStrimziTopicsMatchTheTopicTable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(k8sDir, "external", "strimzi-kafka.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	plans := loadTopicTable(t)
	seen := map[string]bool{}
	var cluster string
	for i, doc := range splitDocs(data) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("document %d: %v", i+1, err)
		}
		if head.APIVersion != "kafka.strimzi.io/v1beta2" {
			t.Errorf("document %d: apiVersion %q, want kafka.strimzi.io/v1beta2", i+1, head.APIVersion)
		}
		switch head.Kind {
		case "Kafka":
			cluster = head.Metadata.Name
		case "KafkaNodePool":
		case "KafkaTopic":
			var kt strimziTopic
			if err := yaml.UnmarshalStrict(doc, &kt); err != nil {
				t.Errorf("KafkaTopic %s: %v", head.Metadata.Name, err)
				continue
			}
			name := kt.Metadata.Name
			if kt.Spec.TopicName != "" {
				name = kt.Spec.TopicName
			}
			plan, ok := plans[name]
			if !ok {
				t.Errorf("KafkaTopic %s is not in topics.txt", name)
				continue
			}
			seen[name] = true
			if kt.Spec.Partitions != plan.partitions {
				t.Errorf("KafkaTopic %s: %d partitions, topics.txt says %d", name, kt.Spec.Partitions, plan.partitions)
			}
			if kt.Spec.Replicas < 3 {
				t.Errorf("KafkaTopic %s: %d replicas; production needs 3", name, kt.Spec.Replicas)
			}
			if got := toInt64(kt.Spec.Config["retention.ms"]); got != plan.retentionMs {
				t.Errorf("KafkaTopic %s: retention.ms %v, topics.txt says %d", name, kt.Spec.Config["retention.ms"], plan.retentionMs)
			}
			if kt.Metadata.Labels["strimzi.io/cluster"] == "" {
				t.Errorf("KafkaTopic %s has no strimzi.io/cluster label", name)
			}
		default:
			t.Errorf("document %d: unexpected kind %q", i+1, head.Kind)
		}
	}
	for name := range plans {
		if !seen[name] {
			t.Errorf("topic %s has no KafkaTopic", name)
		}
	}
	if cluster == "" {
		t.Fatal("no Kafka resource")
	}
	// The processors' bootstrap address is the Strimzi bootstrap service.
	cm := loadManifests(t).configMaps["classpulse-config"]
	if want := cluster + "-kafka-bootstrap."; cm == nil || !strings.HasPrefix(cm.Data["CLASSPULSE_BROKERS"], want) {
		t.Errorf("CLASSPULSE_BROKERS does not point at the %q bootstrap service", want)
	}
}

func toInt64(v any) int64 {
	switch n := v.(type) {
	case float64:
		return int64(n)
	case int64:
		return n
	case string:
		i, _ := strconv.ParseInt(n, 10, 64)
		return i
	}
	return 0
}
