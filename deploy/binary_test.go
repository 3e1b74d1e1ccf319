package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// classpulseBinary builds cmd/classpulse once per test run.
func classpulseBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "classpulse-deploy-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "classpulse")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/classpulse")
		cmd.Dir = ".."
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/classpulse: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

var envInHelp = regexp.MustCompile(`\[env (CLASSPULSE_[A-Z0-9_]+)\]`)

// commandEnv returns the CLASSPULSE_* variables `classpulse <command>`
// reads, from its --help. ok is false when the binary has no such command.
func commandEnv(t *testing.T, command string) (map[string]bool, bool) {
	t.Helper()
	out, _ := exec.Command(classpulseBinary(t), command, "--help").CombinedOutput()
	if strings.Contains(string(out), "unknown command") {
		return nil, false
	}
	vars := map[string]bool{}
	for _, m := range envInHelp.FindAllStringSubmatch(string(out), -1) {
		vars[m[1]] = true
	}
	if len(vars) == 0 {
		t.Fatalf("classpulse %s --help lists no environment variables:\n%s", command, out)
	}
	return vars, true
}

// Every CLASSPULSE_* variable a manifest or the compose file gives a
// command is one that command reads: a misspelt or renamed variable would
// otherwise be ignored without a word, and the pod would run on defaults.
func TestDeployedEnvironmentIsReadByTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/classpulse")
	}
	m := loadManifests(t)
	given := map[string]map[string]string{} // command → variable → where
	add := func(command, name, where string) {
		if !strings.HasPrefix(name, "CLASSPULSE_") {
			return
		}
		if given[command] == nil {
			given[command] = map[string]string{}
		}
		given[command][name] = where
	}
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if len(c.Args) == 0 {
				t.Errorf("%s: container %s has no subcommand in args", d.Name, c.Name)
				continue
			}
			command := c.Args[0]
			for _, e := range c.Env {
				add(command, e.Name, "k8s "+d.Name)
			}
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil {
					for k := range configMapData(m.configMaps[ef.ConfigMapRef.Name]) {
						add(command, k, "k8s ConfigMap "+ef.ConfigMapRef.Name+" in "+d.Name)
					}
				}
			}
		}
	}
	for name, s := range loadCompose(t).Services {
		if s.Build == nil || len(s.Command) == 0 {
			continue
		}
		for k := range s.Environment {
			add(s.Command[0], k, "compose service "+name)
		}
	}
	if len(given) == 0 {
		t.Fatal("no CLASSPULSE_* variable found in the manifests")
	}
	var commands []string
	for c := range given {
		commands = append(commands, c)
	}
	sort.Strings(commands)
	for _, command := range commands {
		vars, ok := commandEnv(t, command)
		if !ok {
			t.Errorf("the deployment runs `classpulse %s`, which the binary does not have", command)
			continue
		}
		for name, where := range given[command] {
			if !vars[name] {
				t.Errorf("%s sets %s, which `classpulse %s` does not read", where, name, command)
			}
		}
	}
}

func configMapData(cm *corev1.ConfigMap) map[string]string {
	if cm == nil {
		return nil
	}
	return cm.Data
}

// The flags the manifests pass must exist too.
func TestDeployedArgsAreFlagsOfTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/classpulse")
	}
	type use struct{ command, flag, where string }
	var uses []use
	for _, d := range loadManifests(t).deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, a := range c.Args[1:] {
				if strings.HasPrefix(a, "-") {
					uses = append(uses, use{c.Args[0], strings.SplitN(strings.TrimLeft(a, "-"), "=", 2)[0], "k8s " + d.Name})
				}
			}
		}
	}
	for name, s := range loadCompose(t).Services {
		if s.Build == nil || len(s.Command) == 0 {
			continue
		}
		for _, a := range s.Command[1:] {
			if strings.HasPrefix(a, "-") {
				uses = append(uses, use{s.Command[0], strings.SplitN(strings.TrimLeft(a, "-"), "=", 2)[0], "compose " + name})
			}
		}
	}
	for _, u := range uses {
		vars, ok := commandEnv(t, u.command)
		if !ok {
			t.Errorf("%s runs `classpulse %s`, which the binary does not have", u.where, u.command)
			continue
		}
		if env := "CLASSPULSE_" + strings.ToUpper(strings.ReplaceAll(u.flag, "-", "_")); !vars[env] {
			t.Errorf("%s passes --%s, which `classpulse %s` does not have", u.where, u.flag, u.command)
		}
	}
}
