package rules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxPolicyBytes bounds the size of a policy file.
const MaxPolicyBytes = 1 << 20

// LoadPolicyFile reads and loads the policy at path. Problems name the file
// by its base name and the line.
func LoadPolicyFile(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("policy: read %s: %w", path, err)
	}
	return LoadPolicy(data, filepath.Base(path))
}

// LoadPolicy parses a YAML policy strictly (unknown fields are errors),
// fills in the documented defaults for every threshold not given,
// validates it, and compiles its custom CEL rules. source names the file in
// errors. Every content problem is reported in a *PolicyError (wrapping
// ErrPolicy) whose lines read "source:LINE: field: message".
func LoadPolicy(data []byte, source string) (*Policy, error) {
	if source == "" {
		source = "policy"
	}
	if len(data) > MaxPolicyBytes {
		return nil, &PolicyError{Source: source, Problems: []Problem{{Message: fmt.Sprintf("file larger than %d bytes", MaxPolicyBytes)}}}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &PolicyError{Source: source, Problems: []Problem{{Message: "empty policy"}}}
		}
		return nil, yamlError(source, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &PolicyError{Source: source, Problems: []Problem{{Line: extra.Line, Message: "more than one YAML document"}}}
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlError(source, err)
	}
	if len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return nil, &PolicyError{Source: source, Problems: []Problem{{Line: root.Line, Message: "a policy is a YAML mapping (version, calendar, courses, ...)"}}}
	}

	p := defaults()
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(p); err != nil {
		return nil, yamlError(source, err)
	}
	sum := sha256.Sum256(data)
	p.Source, p.Digest = source, hex.EncodeToString(sum[:])

	v := &validator{root: root.Content[0]}
	p.validate(v)
	if len(v.problems) == 0 {
		p.compileCustom(v)
	}
	if len(v.problems) > 0 {
		return nil, &PolicyError{Source: source, Problems: v.problems}
	}
	return p, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns a yaml.v3 error into a PolicyError with the lines.
func yamlError(source string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	pe := &PolicyError{Source: source}
	for _, m := range msgs {
		if len(pe.Problems) == maxProblems {
			break
		}
		pr := Problem{Message: strings.TrimPrefix(m, "yaml: ")}
		if g := yamlLine.FindStringSubmatch(m); g != nil {
			pr.Line, _ = strconv.Atoi(g[1])
			pr.Message = g[2]
		}
		// "field x not found in type rules.Course" → "unknown field x".
		if f, ok := strings.CutPrefix(pr.Message, "field "); ok {
			if name, _, ok := strings.Cut(f, " not found in type "); ok {
				pr.Message = "unknown field " + strconv.Quote(name)
			}
		}
		pr.Message = strings.ReplaceAll(pr.Message, "rules.", "")
		pe.Problems = append(pe.Problems, pr)
	}
	return pe
}

// validator collects problems and finds their lines in the YAML tree.
type validator struct {
	root     *yaml.Node
	problems []Problem
}

// errf records a problem at the field path (components are strings for
// mapping keys and ints for sequence indexes).
func (v *validator) errf(path []any, format string, args ...any) {
	if len(v.problems) == maxProblems {
		return
	}
	v.problems = append(v.problems, Problem{Line: v.line(path), Field: pathString(path), Message: fmt.Sprintf(format, args...)})
}

// line returns the line of the deepest node along path that exists: the
// key's line for a mapping entry, the item's for a sequence element.
func (v *validator) line(path []any) int {
	n, line := v.root, v.root.Line
	for _, c := range path {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		switch c := c.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == c {
					line, n, found = n.Content[i].Line, n.Content[i+1], true
					break
				}
			}
			if !found {
				return line
			}
		case int:
			if n.Kind != yaml.SequenceNode || c >= len(n.Content) {
				return line
			}
			n = n.Content[c]
			line = n.Line
		}
	}
	return line
}

// pathString formats a path: courses[2].required_hours.
func pathString(path []any) string {
	var b strings.Builder
	for _, c := range path {
		switch c := c.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(c)
		case int:
			b.WriteString("[" + strconv.Itoa(c) + "]")
		}
	}
	return b.String()
}

// at appends components to a path without aliasing the caller's slice.
func at(path []any, more ...any) []any {
	out := make([]any, 0, len(path)+len(more))
	return append(append(out, path...), more...)
}

// defaults returns a policy with every threshold at its §6 default and
// no calendar or courses.
func defaults() *Policy {
	return &Policy{
		Study: StudyRule{Enabled: true, MinCourses: 2, Basis: BasisProrated, RedLastDays: 14, RedShare: 2.0 / 3},
		Grade: GradeRule{Enabled: true, YellowFailed: 2, RedFailed: 4},
		Degree: DegreeRule{Enabled: true, MinAverage: 70, MinCoreAverage: 75, ForeignLanguage: true,
			RedCountElectives: true},
		Live: LiveRules{
			Attention:  LiveThreshold{Enabled: true, Window: "2m", Yellow: 0.4, Red: 0.25, MinSamples: 60},
			FaceAbsent: FaceAbsent{Enabled: true, Yellow: time.Minute, Red: 5 * time.Minute},
			Confused:   LiveThreshold{Enabled: true, Window: "2m", Yellow: 0.5, Red: 0.7, MinSamples: 60},
			Frustrated: LiveThreshold{Enabled: true, Window: "2m", Yellow: 0.5, Red: 0.7, MinSamples: 60},
		},
		Class: ClassRules{
			MinCaptured: 4,
			Confused:    ClassShare{Enabled: true, Yellow: 0.4, Red: 0.6},
			Inattentive: ClassShare{Enabled: true, Yellow: 0.5, Red: 0.7},
			Absent:      ClassShare{Enabled: true, Yellow: 0.3, Red: 0.5},
		},
		Dynamic:       Dynamic{RequiredTime: true, EmotionLimits: true},
		Trend:         TrendRule{Enabled: true, Drop: 0.10, MinPreviousHours: 1, Level: "info"},
		Peer:          PeerRule{Enabled: true, Basis: "median", Ratio: 0.8, MinClass: 5, Level: "info"},
		PredictedRisk: defaultPredictedRisk,
		Lifecycle: Lifecycle{
			Academic: Hold{MinHold: 24 * time.Hour},
			Live:     Hold{MinHold: time.Minute, Cooldown: 5 * time.Minute},
			Class:    Hold{MinHold: time.Minute, Cooldown: 3 * time.Minute},
		},
	}
}
