package main

import (
	"io"
	"log/slog"
	"runtime"
	"testing"
)

func TestLoopbackRedisIsRedisOnThisMachine(t *testing.T) {
	cases := []struct {
		addrs string
		want  bool
	}{
		{"127.0.0.1:6379", true},
		{"localhost:6379", true},
		{"[::1]:6379", true},
		{":6379", true},
		{"127.0.0.1:7000,127.0.0.1:7001", true},
		{"127.0.0.1:7000,10.0.0.5:7001", false},
		{"redis.classpulse.svc:6379", false},
		{"10.0.0.5:6379", false},
		{"no-port", false},
		{"", false},
	}
	for _, c := range cases {
		if got := loopbackRedis(c.addrs); got != c.want {
			t.Errorf("loopbackRedis(%q) = %v, want %v", c.addrs, got, c.want)
		}
	}
}

func TestGomaxprocsLeavesACoreToALocalRedis(t *testing.T) {
	was := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(was) })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cases := []struct {
		name  string
		flag  int
		env   string
		cpus  int
		redis string
		want  int
	}{
		{"local redis, four cpus", 0, "", 4, "127.0.0.1:6379", 3},
		{"local redis, two cpus", 0, "", 2, "localhost:6379", 1},
		{"local redis, one cpu", 0, "", 1, "127.0.0.1:6379", 1},
		{"remote redis", 0, "", 4, "10.0.0.5:6379", 4},
		{"the flag wins", 2, "", 4, "127.0.0.1:6379", 2},
		{"the environment wins over automatic", 0, "4", 4, "127.0.0.1:6379", 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("GOMAXPROCS", c.env)
			runtime.GOMAXPROCS(c.cpus)
			g := gomaxprocs{n: c.flag}
			got, restore, err := g.apply(c.redis, logger)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want || runtime.GOMAXPROCS(0) != c.want {
				t.Fatalf("apply = %d, GOMAXPROCS %d; want %d", got, runtime.GOMAXPROCS(0), c.want)
			}
			restore()
			if runtime.GOMAXPROCS(0) != c.cpus {
				t.Fatalf("restored GOMAXPROCS %d, want %d", runtime.GOMAXPROCS(0), c.cpus)
			}
		})
	}
	if _, _, err := (&gomaxprocs{n: -1}).apply("127.0.0.1:6379", logger); err == nil {
		t.Fatal("--gomaxprocs -1 accepted")
	}
}
