package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// RebuildStats says what a rebuild did.
type RebuildStats struct {
	// KeysDeleted is how many student keys the wipe removed.
	KeysDeleted int64
	// Messages is how many input messages were read and applied (or
	// skipped as invalid).
	Messages int64
	// Students is how many students got an open-warnings document back.
	Students int
}

// Rebuild turns Redis back into the materialised view of the topics
// (DESIGN.md §3): it deletes every student's keys ({s:*}, on every master
// of a cluster), reads every input partition from its earliest offset up to
// the high-water mark it had when Rebuild started, applies it through the
// per-student stage in apply-only mode (no rules, nothing published: the
// log already holds what the first run published), then restores each
// student's open-warnings document from the warnings topic. Run the
// per-student stage afterwards as usual; events the group has not committed
// yet are then redelivered and skipped, or applied if they came after the
// high-water mark.
//
// The wipe comes first, so the processors of the group must be stopped
// while Rebuild runs; events of one student on different topics are applied
// topic by topic, so a score sent after a camera consent revocation is
// refused live but applied and erased here only if it was read first.
func (p *Processor) Rebuild(ctx context.Context) (RebuildStats, error) {
	var st RebuildStats
	deleted, err := p.wipeStudents(ctx)
	if err != nil {
		return st, err
	}
	st.KeysDeleted = deleted
	p.store.Forget()
	p.logger.Info("rebuild: student state wiped", "keys", deleted)
	tr := stream.NewTransport("classpulse-rebuild", p.cfg.KafkaTLS)
	defer tr.CloseIdleConnections()
	ends, err := p.partitionEnds(ctx, tr, append(append([]string{}, stream.InputTopics...), stream.TopicWarnings))
	if err != nil {
		return st, err
	}
	opens := map[string]rules.Open{}
	for _, e := range ends {
		batch := make([]stream.Message, 0, p.cfg.MaxBatch)
		flush := func() error {
			if len(batch) == 0 || e.topic == stream.TopicWarnings {
				batch = batch[:0]
				return nil
			}
			err := p.handle(ctx, batch, false)
			st.Messages += int64(len(batch))
			batch = batch[:0]
			return err
		}
		err := p.readRange(ctx, e, func(m stream.Message) error {
			if e.topic == stream.TopicWarnings {
				collectWarning(opens, m)
				return nil
			}
			batch = append(batch, m)
			if len(batch) == cap(batch) {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return st, fmt.Errorf("rebuild: %s/%d: %w", e.topic, e.partition, err)
		}
	}
	if err := p.restoreOpen(ctx, opens); err != nil {
		return st, err
	}
	for _, o := range opens {
		if len(o) > 0 {
			st.Students++
		}
	}
	p.logger.Info("rebuild: done", "messages", st.Messages, "students_with_warnings", st.Students)
	return st, nil
}

// wipeStudents deletes every {s:*} key, on every master of a cluster.
func (p *Processor) wipeStudents(ctx context.Context) (int64, error) {
	var total int64
	wipe := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, "{s:*", 1000).Iterator()
		keys := make([]string, 0, 1000)
		del := func() error {
			if len(keys) == 0 {
				return nil
			}
			// One UNLINK per key: on a cluster the keys of one call must
			// share a slot, and a pipeline keeps the round trips down.
			pipe := c.Pipeline()
			for _, k := range keys {
				pipe.Unlink(ctx, k)
			}
			cmds, err := pipe.Exec(ctx)
			for _, cmd := range cmds {
				if ic, ok := cmd.(*redis.IntCmd); ok {
					total += ic.Val()
				}
			}
			keys = keys[:0]
			return err
		}
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
			if len(keys) == cap(keys) {
				if err := del(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return del()
	}
	var err error
	switch c := p.rdb.(type) {
	case *redis.ClusterClient:
		// The masters are wiped one at a time: they share the total.
		var mu sync.Mutex
		err = c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return wipe(ctx, m)
		})
	case *redis.Client:
		err = wipe(ctx, c)
	default:
		return 0, fmt.Errorf("rebuild: cannot scan a %T; use a client or a cluster client", p.rdb)
	}
	if err != nil {
		return total, fmt.Errorf("rebuild: wipe student state: %w", err)
	}
	return total, nil
}

// partEnd is one partition's range to read: [first, last).
type partEnd struct {
	topic       string
	partition   int
	first, last int64
}

func (p *Processor) partitionEnds(ctx context.Context, tr *kafka.Transport, topics []string) ([]partEnd, error) {
	client := &kafka.Client{Addr: kafka.TCP(p.cfg.Brokers...), Timeout: 10 * time.Second, Transport: tr}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("rebuild: metadata: %w", err)
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("rebuild: topic %s: %w", t.Name, t.Error)
		}
		for _, pt := range t.Partitions {
			req.Topics[t.Name] = append(req.Topics[t.Name], kafka.FirstOffsetOf(pt.ID), kafka.LastOffsetOf(pt.ID))
		}
	}
	res, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("rebuild: list offsets: %w", err)
	}
	var out []partEnd
	for _, t := range topics { // input topics first, warnings last
		for _, po := range res.Topics[t] {
			if po.Error != nil {
				return nil, fmt.Errorf("rebuild: offsets of %s/%d: %w", t, po.Partition, po.Error)
			}
			if po.LastOffset > po.FirstOffset {
				out = append(out, partEnd{topic: t, partition: po.Partition, first: po.FirstOffset, last: po.LastOffset})
			}
		}
	}
	return out, nil
}

// readRange reads one partition from e.first up to e.last, outside any
// consumer group.
func (p *Processor) readRange(ctx context.Context, e partEnd, f func(stream.Message) error) error {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: p.cfg.Brokers, Topic: e.topic, Partition: e.partition, Dialer: stream.NewDialer("classpulse-rebuild", p.cfg.KafkaTLS),
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 500 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(e.first); err != nil {
		return err
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return err
		}
		if err := f(m); err != nil {
			return err
		}
		if m.Offset >= e.last-1 {
			return nil
		}
	}
}

// collectWarning folds one warning transition into the students' open
// documents: the last transition per ref wins and a clear removes it.
func collectWarning(opens map[string]rules.Open, m stream.Message) {
	var w stream.Warning
	if err := stream.DecodeInto(m.Value, &w); err != nil || w.Student == "" {
		return // class warnings live under {c:…}, not in student state
	}
	o := opens[w.Student]
	if o == nil {
		o = rules.Open{}
		opens[w.Student] = o
	}
	k := rules.Key(w.Rule, w.Course)
	if w.State == stream.StateCleared {
		if cur := o[k]; cur != nil && cur.Ref == w.Ref {
			delete(o, k)
		}
		return
	}
	fam := rules.FamilyAcademic
	if w.Session != "" {
		fam = rules.FamilyLive
	}
	raised := w.TS.Time
	if cur := o[k]; cur != nil && cur.Ref == w.Ref {
		raised = cur.RaisedAt
	}
	o[k] = &rules.OpenWarning{Ref: w.Ref, Rule: w.Rule, Course: w.Course, Session: w.Session, Category: w.Category,
		Level: w.Level, Family: fam, Reason: w.Reason, Evidence: w.Evidence, RaisedAt: raised, ChangedAt: w.TS.Time}
}

func (p *Processor) restoreOpen(ctx context.Context, opens map[string]rules.Open) error {
	pipe := p.rdb.Pipeline()
	n := 0
	for student, o := range opens {
		if len(o) == 0 {
			continue
		}
		doc, err := json.Marshal(o)
		if err != nil {
			return err
		}
		pipe.Set(ctx, state.WarnKey(student), doc, 0)
		if n++; n%500 == 0 {
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("rebuild: open warnings: %w", err)
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("rebuild: open warnings: %w", err)
	}
	return nil
}
