package rules

import (
	_ "embed"
	"sync"
)

//go:embed default_policy.yaml
var defaultPolicyYAML []byte

var defaultPolicy = sync.OnceValue(func() *Policy {
	p, err := LoadPolicy(defaultPolicyYAML, "default_policy.yaml")
	if err != nil {
		// The embedded file is tested; failing here is a build defect.
		panic("rules: embedded default policy: " + err.Error())
	}
	p.Source = "default"
	return p
})

// DefaultPolicy returns the embedded default policy (rules/default_policy.yaml),
// which reproduces DESIGN.md §6 with a demo calendar (2026/27) and the demo
// courses calculus, law, english and politics (a public elective). Schools
// replace the calendar and courses with their own file. The policy is
// shared and must not be modified.
func DefaultPolicy() *Policy { return defaultPolicy() }

// DefaultPolicyYAML returns the embedded default policy file, a starting
// point for a school's own.
func DefaultPolicyYAML() []byte { return append([]byte(nil), defaultPolicyYAML...) }
