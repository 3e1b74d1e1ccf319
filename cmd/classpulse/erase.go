package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/helploop"
	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

const eraseSummary = "erase one student from every Redis read model and log the erasure: classpulse erase --student ID"

func init() { register("erase", eraseSummary, runErase) }

func runErase(ctx context.Context, args []string) error {
	return eraseCmd(ctx, args, os.Stdout)
}

// eraseCmd is runErase writing its report to out.
func eraseCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlagSet("erase", eraseSummary)
	var in infra
	in.register(fs, true, true)
	student := fs.String("student", "", "id of the student to erase (required)")
	actor := fs.String("actor", "", `who asks for the erasure, recorded in the audit log (default "cli:<os user>")`)
	reason := fs.String("reason", "", "why, recorded in the audit log (e.g. the request's ticket number)")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if *actor == "" {
		*actor = "cli:" + osUser()
	}
	// Validate the audit record before touching anything: it checks the
	// student id's shape (no glob or hash-tag characters) and the actor.
	audit := &stream.Audit{
		Header: stream.NewHeader(*student, time.Now()),
		Actor:  *actor, Action: stream.AuditErase, Target: "redis",
		Detail: *reason,
	}
	if *student == "" {
		return errors.New("--student is required")
	}
	if err := audit.Validate(); err != nil {
		return fmt.Errorf("erase: %w", err)
	}
	logger, err := in.logger()
	if err != nil {
		return err
	}
	logger = logger.With("component", "erase")
	kafkaTLS, err := in.kafkaClientTLS(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	rdb := in.redisClient()
	defer rdb.Close()
	rep, err := eraseStudent(ctx, rdb, *student)
	if err != nil {
		return fmt.Errorf("erase %s: %w (nothing was logged; running it again is safe)", *student, err)
	}
	audit.Counts = rep.counts()

	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: in.brokers, TLS: kafkaTLS}, logger)
	if err != nil {
		return err
	}
	defer prod.Close()
	if err := prod.Publish(ctx, audit); err != nil {
		rep.write(out, *student, "")
		return fmt.Errorf("erased %s but the audit record was not published to %s: %w; run the same command again to log it", *student, stream.TopicAudit, err)
	}
	logger.Info("student erased", "audit_id", audit.ID, "redis_keys", rep.StudentKeys, "tiles", rep.Tiles, "queue_records", rep.QueueRecords)
	rep.write(out, *student, audit.ID)
	return nil
}

func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@", r) {
				return r
			}
			return '_'
		}, u.Username)
	}
	return "unknown"
}

// eraseReport counts what an erasure removed.
type eraseReport struct {
	// StudentKeys are the {s:<student>}:* keys deleted, by name.
	StudentKeys []string
	// Tiles are the {c:<session>}:tiles hashes the student's field left.
	Tiles []string
	// QueueRecords are the warning records (refs) dropped from the queue
	// read model, with their help-loop steps and index entries.
	QueueRecords []string
	// FollowUps counts the help-plan follow-up records (helploop) deleted
	// with those warnings.
	FollowUps int64
	// Roster is true when the student's roster entry was removed.
	Roster bool
	// LiveEntries counts entries of the live warning and intervention
	// streams that named the student.
	LiveEntries int64
}

func (r *eraseReport) counts() map[string]int64 {
	m := map[string]int64{
		"redis_keys":    int64(len(r.StudentKeys)),
		"tiles":         int64(len(r.Tiles)),
		"queue_records": int64(len(r.QueueRecords)),
		"live_entries":  r.LiveEntries,
		"follow_ups":    r.FollowUps,
	}
	if r.Roster {
		m["roster"] = 1
	} else {
		m["roster"] = 0
	}
	return m
}

func (r *eraseReport) write(w io.Writer, student, auditID string) {
	fmt.Fprintf(w, "erased student %s\n", student)
	fmt.Fprintf(w, "  student state keys deleted: %d\n", len(r.StudentKeys))
	for _, k := range r.StudentKeys {
		fmt.Fprintf(w, "    %s\n", k)
	}
	fmt.Fprintf(w, "  class tiles removed:        %d\n", len(r.Tiles))
	for _, k := range r.Tiles {
		fmt.Fprintf(w, "    %s\n", k)
	}
	fmt.Fprintf(w, "  warning queue records:      %d\n", len(r.QueueRecords))
	for _, k := range r.QueueRecords {
		fmt.Fprintf(w, "    %s\n", k)
	}
	fmt.Fprintf(w, "  help-plan follow-ups:       %d\n", r.FollowUps)
	fmt.Fprintf(w, "  roster entry removed:       %v\n", r.Roster)
	fmt.Fprintf(w, "  live stream entries:        %d\n", r.LiveEntries)
	if auditID != "" {
		fmt.Fprintf(w, "  audit record:               %s on %s\n", auditID, stream.TopicAudit)
	} else {
		fmt.Fprintf(w, "  audit record:               NOT PUBLISHED\n")
	}
	fmt.Fprintf(w, "not erased: the student's events in Kafka (the log of record) stay until topic retention deletes them; see docs/privacy.md\n")
}

// eraseStudent removes student from every Redis read model classpulse
// keeps. Each step is idempotent, so an interrupted erasure is finished by
// running it again.
func eraseStudent(ctx context.Context, rdb redis.UniversalClient, student string) (*eraseReport, error) {
	rep := &eraseReport{}
	// 1. Per-student state: every key under the student's hash tag. On a
	// cluster they share one slot, but scanning every master also catches
	// keys left behind on a former owner during a resharding.
	keys, err := scanAll(ctx, rdb, state.StudentTag(student)+":*")
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		n, err := rdb.Del(ctx, k).Result()
		if err != nil {
			return nil, fmt.Errorf("delete %s: %w", k, err)
		}
		if n > 0 {
			rep.StudentKeys = append(rep.StudentKeys, k)
		}
	}
	// 2. The student's latest tile in every class session's grid.
	tiles, err := scanAll(ctx, rdb, state.TilesKey("*"))
	if err != nil {
		return nil, err
	}
	for _, k := range tiles {
		n, err := rdb.HDel(ctx, k, student).Result()
		if err != nil {
			return nil, fmt.Errorf("remove tile from %s: %w", k, err)
		}
		if n > 0 {
			rep.Tiles = append(rep.Tiles, k)
		}
	}
	// 3. The warning queue read model (dashboard/queue): the student's
	// warning records, their steps and index entries, and the roster.
	refs, roster, err := queue.NewStore(rdb).EraseStudent(ctx, student)
	if err != nil {
		return nil, err
	}
	rep.QueueRecords = append(rep.QueueRecords, refs...)
	rep.Roster = roster
	// The automatic follow-up's record of those warnings' help plans.
	if rep.FollowUps, err = helploop.EraseWarnings(ctx, rdb, refs); err != nil {
		return nil, err
	}
	// 4. The live streams dashboards tail (bounded to LiveMaxLen entries).
	for _, s := range []string{state.LiveWarnings, state.LiveInterventions} {
		n, err := eraseFromLiveStream(ctx, rdb, s, student)
		if err != nil {
			return nil, err
		}
		rep.LiveEntries += n
	}
	return rep, nil
}

// eraseFromLiveStream deletes the entries of a live stream whose event
// (field "e") names student.
func eraseFromLiveStream(ctx context.Context, rdb redis.UniversalClient, key, student string) (int64, error) {
	var removed int64
	start := "-"
	for {
		msgs, err := rdb.XRangeN(ctx, key, start, "+", 1000).Result()
		if err != nil {
			return removed, fmt.Errorf("read %s: %w", key, err)
		}
		var ids []string
		for _, m := range msgs {
			raw, _ := m.Values["e"].(string)
			var h struct {
				Student string `json:"student"`
			}
			if json.Unmarshal([]byte(raw), &h) == nil && h.Student == student {
				ids = append(ids, m.ID)
			}
		}
		if len(ids) > 0 {
			n, err := rdb.XDel(ctx, key, ids...).Result()
			if err != nil {
				return removed, fmt.Errorf("delete from %s: %w", key, err)
			}
			removed += n
		}
		if len(msgs) < 1000 {
			return removed, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// scanAll returns every key matching pattern, on every master of a
// cluster or on the one server.
func scanAll(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	var keys []string
	scan := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		return it.Err()
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		// ForEachMaster calls fn on the masters concurrently.
		var mu sync.Mutex
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return scan(ctx, c)
		})
	} else {
		err = scan(ctx, rdb)
	}
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", pattern, err)
	}
	sort.Strings(keys)
	keys = dedup(keys)
	return keys, nil
}

func dedup(sorted []string) []string {
	out := sorted[:0]
	for i, k := range sorted {
		if i == 0 || k != sorted[i-1] {
			out = append(out, k)
		}
	}
	return out
}
