package scale

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// busOffset is Redis Cluster's fixed distance from a node's client port to
// its cluster-bus port.
const busOffset = 10000

// Cluster is a Redis Cluster of redis-server child processes on
// 127.0.0.1, one master per node and no replicas. The caller owns it and
// must Close it.
type Cluster struct {
	// Addrs are the nodes' client addresses, host:port.
	Addrs []string
	procs []*exec.Cmd
	logs  []*os.File
}

// StartCluster starts n redis-server nodes in cluster mode under dir (one
// folder each), joins them with `redis-cli --cluster create` (the 16384
// slots split evenly) and waits until every node reports cluster_state:ok.
func StartCluster(ctx context.Context, dir string, n int) (*Cluster, error) {
	if n < 3 {
		return nil, fmt.Errorf("scale: a Redis Cluster needs at least 3 masters, got %d", n)
	}
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("scale: %s not installed (make deploy-deps): %w", bin, err)
		}
	}
	c := &Cluster{}
	for i := 0; i < n; i++ {
		if err := c.startNode(ctx, filepath.Join(dir, fmt.Sprintf("node%d", i))); err != nil {
			c.Close()
			return nil, err
		}
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(cctx, "redis-cli", args...).CombinedOutput(); err != nil {
		c.Close()
		return nil, fmt.Errorf("scale: redis-cli --cluster create: %w\n%s", err, out)
	}
	if err := c.waitHealthy(ctx, 30*time.Second); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// startNode starts one node on a port whose bus port is free too.
func (c *Cluster) startNode(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var lastErr error
	for attempt := 0; attempt < 10; attempt++ {
		port, err := freePortWithBus()
		if err != nil {
			lastErr = err
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		logf, err := os.Create(filepath.Join(dir, "redis.log"))
		if err != nil {
			return err
		}
		cmd := exec.Command("redis-server",
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000", "--save", "", "--appendonly", "no",
			"--protected-mode", "no")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			return fmt.Errorf("scale: start redis-server: %w", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		if err := waitPing(ctx, addr, exited); err != nil {
			_ = cmd.Process.Kill()
			<-exited
			logf.Close()
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			lastErr = fmt.Errorf("scale: redis-server on %s: %w\n%s", addr, err, log)
			continue
		}
		c.Addrs = append(c.Addrs, addr)
		c.procs = append(c.procs, cmd)
		c.logs = append(c.logs, logf)
		return nil
	}
	return lastErr
}

// freePortWithBus finds a loopback port p such that p and p+10000 are both
// free at the moment of asking.
func freePortWithBus() (int, error) {
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port+busOffset > 65535 {
			continue
		}
		bl, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+busOffset)))
		if err != nil {
			continue
		}
		bl.Close()
		return port, nil
	}
	return 0, errors.New("scale: no free port pair (p, p+10000) on 127.0.0.1")
}

func waitPing(ctx context.Context, addr string, exited <-chan struct{}) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := rdb.Ping(pctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited")
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitHealthy waits until every node sees all slots served and every node.
func (c *Cluster) waitHealthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var problem string
		for _, addr := range c.Addrs {
			info, err := c.Node(addr).ClusterInfo(ctx).Result()
			if err != nil {
				problem = fmt.Sprintf("%s: %v", addr, err)
				break
			}
			if !strings.Contains(info, "cluster_state:ok") ||
				!strings.Contains(info, "cluster_slots_ok:16384") ||
				!strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", len(c.Addrs))) {
				problem = addr + ": " + strings.Join(strings.Fields(info)[:4], " ")
				break
			}
		}
		if problem == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("scale: cluster not healthy after %v: %s", timeout, problem)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Client returns a cluster client over the nodes. The caller closes it.
func (c *Cluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
}

// Node returns a plain client to one node, which answers MOVED for keys of
// slots it does not own. The caller closes it.
func (c *Cluster) Node(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
}

// SlotOwners maps each of the 16384 slots to the address of its master.
func (c *Cluster) SlotOwners(ctx context.Context) ([]string, error) {
	rdb := c.Node(c.Addrs[0])
	defer rdb.Close()
	shards, err := rdb.ClusterShards(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("scale: CLUSTER SHARDS: %w", err)
	}
	owners := make([]string, 16384)
	for _, sh := range shards {
		var master string
		for _, n := range sh.Nodes {
			if n.Role == "master" {
				master = net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))
			}
		}
		if master == "" {
			continue
		}
		for _, r := range sh.Slots {
			for s := r.Start; s <= r.End; s++ {
				owners[s] = master
			}
		}
	}
	for s, o := range owners {
		if o == "" {
			return nil, fmt.Errorf("scale: slot %d has no owner", s)
		}
	}
	return owners, nil
}

// FlushAll empties every node, for a second run on the same cluster.
func (c *Cluster) FlushAll(ctx context.Context) error {
	for _, addr := range c.Addrs {
		rdb := c.Node(addr)
		err := rdb.FlushAll(ctx).Err()
		rdb.Close()
		if err != nil {
			return fmt.Errorf("scale: FLUSHALL %s: %w", addr, err)
		}
	}
	return nil
}

// Close kills every node and waits for it to exit.
func (c *Cluster) Close() {
	for i, p := range c.procs {
		if p.Process != nil {
			_ = p.Process.Kill()
			for j := 0; j < 200; j++ {
				conn, err := net.DialTimeout("tcp", c.Addrs[i], 50*time.Millisecond)
				if err != nil {
					break
				}
				conn.Close()
				time.Sleep(10 * time.Millisecond)
			}
		}
		c.logs[i].Close()
	}
	c.procs, c.logs = nil, nil
}
