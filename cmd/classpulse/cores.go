package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
)

// gomaxprocs is --gomaxprocs of the commands that run the processor.
type gomaxprocs struct{ n int }

func (g *gomaxprocs) register(fs *flag.FlagSet) {
	fs.IntVar(&g.n, "gomaxprocs", 0, "Go threads running code at once (GOMAXPROCS). 0: Go's default, the CPUs this process may use, less one when Redis is on this machine (every --redis address a loopback one) and there are at least two: Redis runs the apply script on one thread, and a processor that keeps every core busy makes it wait. A GOMAXPROCS environment variable wins over 0")
}

// apply sets GOMAXPROCS for a processor writing to Redis at redisAddrs
// (comma-separated host:port), and logs what it chose when it changed it.
// It returns GOMAXPROCS as it is afterwards, and restore, which sets it
// back as it was (tests run the commands in their own process).
func (g *gomaxprocs) apply(redisAddrs string, logger *slog.Logger) (n int, restore func(), err error) {
	was := runtime.GOMAXPROCS(0)
	restore = func() { runtime.GOMAXPROCS(was) }
	switch {
	case g.n < 0:
		return 0, func() {}, fmt.Errorf("--gomaxprocs %d: want 0 (automatic) or more", g.n)
	case g.n > 0:
		runtime.GOMAXPROCS(g.n)
		return g.n, restore, nil
	}
	if os.Getenv("GOMAXPROCS") != "" || was < 2 || !loopbackRedis(redisAddrs) {
		return was, restore, nil
	}
	runtime.GOMAXPROCS(was - 1)
	logger.Info("leaving one core to the redis-server on this machine (--gomaxprocs)", "gomaxprocs", was-1, "cpus", was)
	return was - 1, restore, nil
}

// loopbackRedis tells whether every address of a --redis list is on this
// machine: localhost, a loopback IP, or no host at all.
func loopbackRedis(addrs string) bool {
	for _, a := range strings.Split(addrs, ",") {
		host, _, err := net.SplitHostPort(strings.TrimSpace(a))
		if err != nil {
			return false
		}
		if host == "" || strings.EqualFold(host, "localhost") {
			continue
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return true
}
