// Package cli dispatches a binary's subcommands: each subcommand registers
// itself from its own file, and Run picks one from the command line and
// turns its outcome into an exit code. Both classpulse binaries use it, and
// their benchmarks start their --cpuprofile profiles with StartCPUProfile;
// it holds no product logic.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
)

// Command is one subcommand. Run parses its own flags and runs until ctx ends.
type Command struct {
	Summary string
	Run     func(ctx context.Context, args []string) error
}

// Set is a binary's subcommands. Names may be two words ("models build");
// Run matches the longer name first.
type Set struct {
	// Name is the binary's name, for messages.
	Name string
	// Title and Footer frame the usage text.
	Title, Footer string
	// Out receives usage and errors.
	Out  io.Writer
	cmds map[string]Command
}

// Register adds a subcommand.
func (s *Set) Register(name, summary string, run func(ctx context.Context, args []string) error) {
	if s.cmds == nil {
		s.cmds = map[string]Command{}
	}
	s.cmds[name] = Command{Summary: summary, Run: run}
}

// Run runs the subcommand args names and returns the exit code: 0 on
// success or help, 1 when the command failed, 2 for an unknown command.
func (s *Set) Run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		s.usage()
		return 0
	}
	name := args[0]
	if len(args) > 1 {
		if _, ok := s.cmds[name+" "+args[1]]; ok {
			name, args = name+" "+args[1], args[1:]
		}
	}
	c, ok := s.cmds[name]
	if !ok {
		fmt.Fprintf(s.Out, "%s: unknown command %q\n\n", s.Name, name)
		s.usage()
		return 2
	}
	if err := c.Run(ctx, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(s.Out, "%s %s: %v\n", s.Name, name, err)
		return 1
	}
	return 0
}

func (s *Set) usage() {
	fmt.Fprintf(s.Out, "%s\n\nUsage: %s <command> [flags]   (%s <command> --help for its flags)\n\nCommands:\n", s.Title, s.Name, s.Name)
	names := make([]string, 0, len(s.cmds))
	for n := range s.cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(s.Out, "  %-15s %s\n", n, s.cmds[n].Summary)
	}
	if s.Footer != "" {
		fmt.Fprintf(s.Out, "\n%s\n", s.Footer)
	}
}
