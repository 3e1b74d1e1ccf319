package state

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ServerCPU returns the seconds of CPU the Redis server has used since it
// started (used_cpu_user + used_cpu_sys of INFO cpu). Benchmarks read it
// before and after a run for Redis's CPU per event, which, unlike a rate,
// does not move with what else the machine is doing.
func ServerCPU(ctx context.Context, rdb redis.UniversalClient) (float64, error) {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, fmt.Errorf("redis INFO cpu: %w", err)
	}
	var sum float64
	seen := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_user" && k != "used_cpu_sys") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("redis INFO cpu: %s %q: %w", k, v, err)
		}
		sum += f
		seen++
	}
	if seen != 2 {
		return 0, fmt.Errorf("redis INFO cpu: used_cpu_user and used_cpu_sys not both reported")
	}
	return sum, nil
}
