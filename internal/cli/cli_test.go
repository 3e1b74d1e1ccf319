package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestRunPicksTheCommandAndMapsItsOutcomeToAnExitCode(t *testing.T) {
	var got []string
	var out bytes.Buffer
	s := Set{Name: "tool", Title: "tool — test", Out: &out}
	s.Register("models", "one word", func(_ context.Context, args []string) error { got = append([]string{"models"}, args...); return nil })
	s.Register("models build", "two words", func(_ context.Context, args []string) error {
		got = append([]string{"models build"}, args...)
		return nil
	})
	s.Register("fail", "fails", func(context.Context, []string) error { return errors.New("boom") })
	s.Register("help-flag", "asks for help", func(context.Context, []string) error { return flag.ErrHelp })
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"models", "--x"}, 0, "models --x"},
		{[]string{"models", "build", "--dir", "m"}, 0, "models build --dir m"},
		{[]string{"fail"}, 1, ""},
		{[]string{"help-flag"}, 0, ""},
		{[]string{"nope"}, 2, ""},
		{nil, 0, ""},
	}
	for _, c := range cases {
		got = nil
		if code := s.Run(context.Background(), c.args); code != c.code {
			t.Errorf("%v: exit %d, want %d", c.args, code, c.code)
		}
		if c.want != "" && strings.Join(got, " ") != c.want {
			t.Errorf("%v ran %q, want %q", c.args, strings.Join(got, " "), c.want)
		}
	}
	if !strings.Contains(out.String(), `tool fail: boom`) || !strings.Contains(out.String(), `unknown command "nope"`) {
		t.Errorf("messages missing:\n%s", out.String())
	}
}
