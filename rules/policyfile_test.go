package rules

import (
	"flag"
	"testing"
)

var policyFlag = flag.String("policy", "", "a policy file for TestPolicyFile to load (make rules-check)")

// TestPolicyFile loads the policy named by -policy and fails with its
// problems, line by line. Without -policy it checks the shipped default.
func TestPolicyFile(t *testing.T) {
	path := *policyFlag
	if path == "" {
		path = "default_policy.yaml"
	}
	p, err := LoadPolicyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: policy %q, %d terms, %d courses, %d custom rules, sha256 %s",
		path, p.Name, len(p.Calendar.Terms), len(p.Courses), len(p.custom), p.Digest)
}
