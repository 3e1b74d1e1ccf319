package faults

import (
	"context"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/classpulse/classpulse/internal/testenv"
)

// seed picks the kill schedule's seed: CLASSPULSE_FAULT_SEED, or the clock.
// It is logged so a failing schedule can be replayed.
func seed(t *testing.T) uint64 {
	if v, err := strconv.ParseUint(os.Getenv("CLASSPULSE_FAULT_SEED"), 10, 64); err == nil {
		return v
	}
	s := uint64(time.Now().UnixNano())
	t.Logf("kill schedule seed %d (replay with CLASSPULSE_FAULT_SEED)", s)
	return s
}

// TestProcessorKilledAtRandomPointsLosesNothingAndCountsNothingTwice kills
// the processor with SIGKILL at random moments while events flow,
// restarts it each time, and checks the final state against a processor
// that ran undisturbed on the same events. A kill between applying a batch
// to Redis and committing its offsets makes Kafka redeliver the batch; the
// last applied offset kept per student must make that redelivery a no-op.
//
// The size: 100,000 events, 5 kills (about 70 s: each restart
// waits out the dead member's group session, 10 s, before the partitions
// are reassigned). CLASSPULSE_FAULT_EVENTS and CLASSPULSE_FAULT_KILLS
// change it for a quicker local run.
func TestProcessorKilledAtRandomPointsLosesNothingAndCountsNothingTwice(t *testing.T) {
	n := envInt("CLASSPULSE_FAULT_EVENTS", 100000)
	kills := envInt("CLASSPULSE_FAULT_KILLS", 5)
	rng := rand.New(rand.NewPCG(seed(t), 1))
	broker := testenv.StartBroker(t, 4)
	faulty := testenv.StartRedis(t)
	clean := testenv.StartRedis(t)
	dir := t.TempDir()
	faultyLog, cleanLog := filepath.Join(dir, "faulty.log"), filepath.Join(dir, "clean.log")
	w := newWorkload(t, n, 40)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	startProcessor(t, broker.Addr(), clean.Addr, "clean", cleanLog)
	proc := startProcessor(t, broker.Addr(), faulty.Addr, "faulty", faultyLog)
	// Spread publishing over about as long as the kills take (each restart
	// costs one group session, 10 s), so every kill lands while events
	// still arrive.
	const batches = 200
	pace := time.Duration(kills*10+3) * time.Second / batches
	published := w.publish(ctx, newProducer(t, broker.Addr()), max(1, n/batches), pace)

	rdb := faulty.Client(t)
	var redelivered float64 // events skipped as already applied, over all incarnations
	for k := 0; k < kills; k++ {
		// Wait until this incarnation has applied something, then kill it a
		// random 0–3 s later: inside its stride, not during its start-up,
		// sometimes before its first offset commit (every 1 s), sometimes
		// after a few.
		base := w.applied(t, rdb)
		testenv.WaitFor(t, 60*time.Second, "the restarted processor to make progress", func() bool {
			return w.applied(t, rdb) > base || w.applied(t, rdb) == int64(w.clicks)
		})
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Millisecond)
		if proc.Exited() {
			t.Fatalf("processor exited by itself:\n%s", tail(faultyLog, 30))
		}
		dup := proc.duplicates()
		proc.Kill()
		if dup > 0 {
			redelivered += dup
		}
		t.Logf("kill %d: SIGKILL with %d of %d clicks counted", k+1, w.applied(t, rdb), w.clicks)
		proc = startProcessor(t, broker.Addr(), faulty.Addr, "faulty", faultyLog)
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	w.waitAll(t, clean.Client(t), 90*time.Second, cleanLog)
	w.waitAll(t, rdb, 90*time.Second, faultyLog)
	if dup := proc.duplicates(); dup > 0 {
		redelivered += dup
	}
	t.Logf("%.0f redelivered events were skipped as already applied", redelivered)
	if redelivered == 0 && kills >= 3 {
		t.Errorf("no kill left an applied but uncommitted batch: the run did not exercise redelivery")
	}
	w.compare(t, rdb, clean.Client(t))
}

// TestRedisRestartMidStreamKeepsStateAndFlipsReadiness kills redis-server
// (append-only file on) while events flow and starts it again on the same
// port and data folder. The processor must answer /readyz with 503 while
// Redis is away and 200 once it is back, keep running, and end with the
// same state as an undisturbed run.
func TestRedisRestartMidStreamKeepsStateAndFlipsReadiness(t *testing.T) {
	n := envInt("CLASSPULSE_FAULT_EVENTS", 12000)
	broker := testenv.StartBroker(t, 4)
	faulty := testenv.StartRedis(t, "--appendonly", "yes")
	clean := testenv.StartRedis(t)
	dir := t.TempDir()
	faultyLog, cleanLog := filepath.Join(dir, "faulty.log"), filepath.Join(dir, "clean.log")
	w := newWorkload(t, n, 40)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	startProcessor(t, broker.Addr(), clean.Addr, "clean", cleanLog)
	proc := startProcessor(t, broker.Addr(), faulty.Addr, "faulty", faultyLog)
	testenv.WaitFor(t, 30*time.Second, "processor ready", func() bool { return proc.readyz() == http.StatusOK })
	published := w.publish(ctx, newProducer(t, broker.Addr()), max(1, n/100), 100*time.Millisecond)

	rdb := faulty.Client(t)
	testenv.WaitFor(t, 60*time.Second, "a quarter of the events applied", func() bool { return w.applied(t, rdb) >= int64(n/4) })
	before := w.applied(t, rdb)
	faulty.Stop()
	t.Logf("redis-server killed with %d of %d clicks counted", before, w.clicks)
	testenv.WaitFor(t, 15*time.Second, "/readyz 503 while Redis is away", func() bool { return proc.readyz() == http.StatusServiceUnavailable })
	// Stay away long enough for the processor's Redis retries to back off.
	time.Sleep(2 * time.Second)
	if proc.readyz() != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d with Redis still down, want 503", proc.readyz())
	}
	if err := faulty.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 15*time.Second, "/readyz 200 after Redis is back", func() bool { return proc.readyz() == http.StatusOK })
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	w.waitAll(t, clean.Client(t), 60*time.Second, cleanLog)
	w.waitAll(t, rdb, 60*time.Second, faultyLog)
	if proc.Exited() {
		t.Fatalf("processor exited:\n%s", tail(faultyLog, 30))
	}
	w.compare(t, rdb, clean.Client(t))
}
