package config

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestEnvironmentFillsFlagsNotGivenOnTheCommandLine(t *testing.T) {
	t.Setenv("CLASSPULSE_REDIS", "redis.example:6379")
	t.Setenv("CLASSPULSE_BROKERS", "k1:9092, k2:9092")
	t.Setenv("CLASSPULSE_STUDENTS", "12")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	redis := fs.String("redis", "127.0.0.1:6379", "")
	var brokers List
	fs.Var(&brokers, "brokers", "")
	students := fs.Int("students", 40, "")
	if err := Parse(fs, []string{"--students", "3"}); err != nil {
		t.Fatal(err)
	}
	if *redis != "redis.example:6379" || len(brokers) != 2 || brokers[1] != "k2:9092" {
		t.Fatalf("env not applied: redis %q brokers %v", *redis, brokers)
	}
	if *students != 3 {
		t.Fatalf("command line lost to the environment: students %d", *students)
	}
}

func TestBadEnvironmentValueNamesTheVariable(t *testing.T) {
	t.Setenv("CLASSPULSE_STUDENTS", "many")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Int("students", 40, "")
	err := Parse(fs, nil)
	if err == nil || !strings.Contains(err.Error(), "CLASSPULSE_STUDENTS") {
		t.Fatalf("err = %v, want it to name CLASSPULSE_STUDENTS", err)
	}
}

func TestNewLoggerRejectsUnknownLevelAndFormat(t *testing.T) {
	if _, err := NewLogger(io.Discard, "loud", "text"); err == nil {
		t.Error("level loud accepted")
	}
	if _, err := NewLogger(io.Discard, "info", "xml"); err == nil {
		t.Error("format xml accepted")
	}
	if _, err := NewLogger(io.Discard, "debug", "json"); err != nil {
		t.Error(err)
	}
}
