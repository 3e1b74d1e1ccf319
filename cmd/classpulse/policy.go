package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/rules"
)

func init() {
	register("policy", "check a warning policy file (policy check FILE...) or print the default (policy default)", runPolicy)
}

// runPolicy serves policy authors (docs/policy.md): `check` loads each
// file as the processor would and lists its problems with their lines;
// `default` prints the embedded default policy as a starting point.
func runPolicy(_ context.Context, args []string) error {
	fs := newFlagSet("policy", "classpulse policy check FILE... | classpulse policy default")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 1 && fs.Arg(0) == "default":
		_, err := os.Stdout.Write(rules.DefaultPolicyYAML())
		return err
	case fs.NArg() >= 2 && fs.Arg(0) == "check":
		var bad error
		for _, path := range fs.Args()[1:] {
			p, err := rules.LoadPolicyFile(path)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				bad = errors.Join(bad, fmt.Errorf("%s: policy refused", path))
				continue
			}
			fmt.Printf("%s: ok: policy %q, %d terms, %d courses, %d custom rules, sha256 %s\n",
				path, p.Name, len(p.Calendar.Terms), len(p.Courses), len(p.Custom), p.Digest)
		}
		return bad
	}
	fs.Usage()
	return errors.New("policy: want `check FILE...` or `default`")
}
