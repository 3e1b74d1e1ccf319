package rules

import "testing"

func TestDefaultPolicyLoads(t *testing.T) {
	p := DefaultPolicy()
	if p.Course("politics") == nil || !p.Course("politics").Elective {
		t.Fatalf("politics missing or not elective")
	}
}
