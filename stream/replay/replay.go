package replay

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/processor"
	"github.com/classpulse/classpulse/stream/state"
)

// Config configures a replay. The zero value works.
type Config struct {
	// Tick is the span of event time handed to the processor as one batch,
	// as a live processor fetching about once a second would see it: the
	// rules are evaluated once per student per batch, so a shorter tick is
	// closer to a live run and slower. Default 1s.
	Tick time.Duration
	// MaxBatch caps the messages of one batch within a tick, like the
	// processor's MaxBatch. Default 500.
	MaxBatch int
	// State configures the state store exactly as the processor's.
	// Default: state.Config's defaults.
	State state.Config
	// Processor configures the processor (MaxSkew, StaleTile); Brokers and
	// groups are not used. Default: processor.Config's defaults.
	Processor processor.Config
}

func (c *Config) applyDefaults() {
	if c.Tick == 0 {
		c.Tick = time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 500
	}
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	if c.Tick < 0 || c.Tick > time.Hour {
		return fmt.Errorf("replay: tick %v must be between 0 and 1h", c.Tick)
	}
	if c.MaxBatch < 0 {
		return fmt.Errorf("replay: max batch %d must not be negative", c.MaxBatch)
	}
	return nil
}

// Report sums up one replay.
type Report struct {
	// Lines is how many non-blank lines were read; Events how many of them
	// were replayed; Invalid how many were skipped.
	Lines, Events, Invalid int
	// Refused counts events the processor itself sent to its dead-letter
	// queue (none is expected: lines are validated as the processor does).
	Refused int
	// Warnings counts the warning events written, by "category/level/state".
	Warnings map[string]int
	// From and To are the first and last event times replayed.
	From, To time.Time
}

// String is the one-line summary the replay command prints.
func (r *Report) String() string {
	keys := make([]string, 0, len(r.Warnings))
	total := 0
	for k, n := range r.Warnings {
		keys = append(keys, k)
		total += n
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, r.Warnings[k])
	}
	s := fmt.Sprintf("replay: %d lines read, %d events replayed, %d invalid lines skipped, %d warning events", r.Lines, r.Events, r.Invalid, total)
	if r.Refused > 0 {
		s += fmt.Sprintf(", %d events refused by the processor", r.Refused)
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, " ") + ")"
	}
	if !r.From.IsZero() {
		s += fmt.Sprintf("; event time %s .. %s", r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
	}
	return s
}

// Option sets a wiring seam.
type Option func(*Replayer)

// WithRedis makes the replay keep its state in rdb instead of a fresh
// embedded server: a real redis-server replays large files several times
// faster. The database must be empty (Run refuses otherwise), since the
// replay writes to it as the processor would.
func WithRedis(rdb redis.UniversalClient) Option { return func(r *Replayer) { r.rdb = rdb } }

// WithInvalid receives every skipped line with its 1-based number; by
// default skipped lines are only logged.
func WithInvalid(f func(line int, err error)) Option { return func(r *Replayer) { r.invalid = f } }

// Replayer runs events files through the processor.
type Replayer struct {
	cfg     Config
	policy  processor.PolicySource
	logger  *slog.Logger
	rdb     redis.UniversalClient
	invalid func(int, error)
}

// New returns a Replayer for policy (a *rules.Holder).
func New(cfg Config, policy processor.PolicySource, logger *slog.Logger, opts ...Option) (*Replayer, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if policy == nil || policy.Policy() == nil {
		return nil, errors.New("replay: a policy is required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	r := &Replayer{cfg: cfg, policy: policy, logger: logger.With("component", "replay")}
	for _, o := range opts {
		o(r)
	}
	if r.invalid == nil {
		r.invalid = func(line int, err error) { r.logger.Warn("line skipped", "line", line, "err", err) }
	}
	return r, nil
}

// entry is one replayable line, kept until every line is read so the
// events can be replayed in time order.
type entry struct {
	line int
	in   *Input
}

// Run reads the events file from in, replays it and writes every warning
// event, one JSON object per line, to out in the order the processor
// published them. It returns the report, also when a write fails.
//
// The whole file is read before replaying, because events are replayed in
// time order (stable: ties keep file order); memory grows with the file.
func (r *Replayer) Run(ctx context.Context, in io.Reader, out io.Writer) (*Report, error) {
	rep := &Report{Warnings: map[string]int{}}
	entries, err := r.read(in, rep)
	if err != nil {
		return rep, err
	}
	sort.SliceStable(entries, func(i, j int) bool {
		return entries[i].in.Event.EventHeader().TS.Before(entries[j].in.Event.EventHeader().TS.Time)
	})
	if len(entries) > 0 {
		rep.From = entries[0].in.Event.EventHeader().TS.Time
		rep.To = entries[len(entries)-1].in.Event.EventHeader().TS.Time
	}

	rdb := r.rdb
	if rdb != nil {
		// A replay writes state, open warnings and the live feed as the
		// processor does: never into a Redis that holds anything.
		n, err := rdb.DBSize(ctx).Result()
		if err != nil {
			return rep, fmt.Errorf("replay: scratch Redis: %w", err)
		}
		if n > 0 {
			return rep, fmt.Errorf("replay: the scratch Redis holds %d keys; replay only into an empty database", n)
		}
	}
	if rdb == nil {
		mem, err := state.StartEmbeddedRedis("127.0.0.1:0", nil)
		if err != nil {
			return rep, err
		}
		defer mem.Close()
		c := redis.NewClient(&redis.Options{Addr: mem.Addr()})
		defer c.Close()
		rdb = c
	}
	store, err := state.New(rdb, r.cfg.State)
	if err != nil {
		return rep, err
	}
	defer store.Close()
	clock := &eventClock{}
	pub := &capture{}
	proc, err := processor.New(r.cfg.Processor, store, r.policy, pub, r.logger, prometheus.NewRegistry(), processor.WithClock(clock.now))
	if err != nil {
		return rep, err
	}
	w := bufio.NewWriter(out)
	offsets := map[string]int64{}
	tileOffset := int64(0)
	for start := 0; start < len(entries); {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		end := r.nextBatch(entries, start)
		batch := make([]stream.Message, 0, end-start)
		for _, e := range entries[start:end] {
			batch = append(batch, stream.Message{Topic: e.in.Topic, Partition: 0, Offset: offsets[e.in.Topic], Value: e.in.Value})
			offsets[e.in.Topic]++
		}
		clock.set(entries[end-1].in.Event.EventHeader().TS.Time)
		start = end
		if err := proc.HandleBatch(ctx, batch); err != nil {
			return rep, fmt.Errorf("replay: batch ending at line %d: %w", entries[end-1].line, err)
		}
		// The class stage runs on the tiles this batch published, as the
		// processor's second consumer group would.
		tiles := pub.take(rep)
		if err := r.writeWarnings(w, pub, rep); err != nil {
			return rep, err
		}
		if len(tiles) > 0 {
			msgs := make([]stream.Message, len(tiles))
			for i, t := range tiles {
				msgs[i] = stream.Message{Topic: stream.TopicTiles, Partition: 0, Offset: tileOffset, Key: []byte(t.Session), Value: t.raw}
				tileOffset++
			}
			if err := proc.HandleTiles(ctx, msgs); err != nil {
				return rep, fmt.Errorf("replay: class stage: %w", err)
			}
			pub.take(rep)
			if err := r.writeWarnings(w, pub, rep); err != nil {
				return rep, err
			}
		}
	}
	if err := w.Flush(); err != nil {
		return rep, fmt.Errorf("replay: write warnings: %w", err)
	}
	return rep, nil
}

// nextBatch returns the end of the batch starting at start: the events
// within one tick of the first, at most MaxBatch of them.
func (r *Replayer) nextBatch(entries []entry, start int) int {
	first := entries[start].in.Event.EventHeader().TS.Time
	end := start + 1
	for end < len(entries) && end-start < r.cfg.MaxBatch &&
		entries[end].in.Event.EventHeader().TS.Time.Sub(first) < r.cfg.Tick {
		end++
	}
	return end
}

// read parses every line; bad lines are reported and skipped.
func (r *Replayer) read(in io.Reader, rep *Report) ([]entry, error) {
	br := bufio.NewReaderSize(in, 64*1024)
	var entries []entry
	for n := 1; ; n++ {
		line, tooLong, err := readLine(br, MaxLineBytes)
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("replay: read line %d: %w", n, err)
		}
		if len(strings.TrimSpace(string(line))) > 0 || tooLong {
			rep.Lines++
			var perr error
			var parsed *Input
			if tooLong {
				perr = fmt.Errorf("%w: longer than %d bytes", ErrLine, MaxLineBytes)
			} else {
				parsed, perr = ParseLine(line)
			}
			if perr != nil {
				rep.Invalid++
				r.invalid(n, perr)
			} else {
				rep.Events++
				entries = append(entries, entry{line: n, in: parsed})
			}
		}
		if err == io.EOF {
			return entries, nil
		}
	}
}

// readLine reads one line without its newline. A line longer than max is
// consumed to its end and reported as too long instead of returned.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > max+2 { // room for "\r\n"
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			line = line[:len(line)-1]
		}
		return line, tooLong, err
	}
}

func (r *Replayer) writeWarnings(w *bufio.Writer, pub *capture, rep *Report) error {
	for _, wr := range pub.warnings {
		b, err := json.Marshal(wr)
		if err != nil {
			return fmt.Errorf("replay: encode warning: %w", err)
		}
		b = append(b, '\n')
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("replay: write warnings: %w", err)
		}
		rep.Warnings[wr.Category+"/"+wr.Level+"/"+wr.State]++
	}
	pub.warnings = pub.warnings[:0]
	return nil
}

// eventClock is the processor's clock during a replay: the time of the
// newest event handed to it, so the future-skew check and every "now" the
// processor takes are in replayed time.
type eventClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *eventClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *eventClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// capture is the processor's Publisher during a replay: it keeps what the
// processor would have sent to Kafka.
type capture struct {
	mu       sync.Mutex
	tiles    []capturedTile
	warnings []*stream.Warning
	refused  int
}

type capturedTile struct {
	Session string
	raw     []byte
}

// Publish implements processor.Publisher.
func (c *capture) Publish(_ context.Context, events ...stream.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range events {
		switch ev := e.(type) {
		case *stream.Warning:
			c.warnings = append(c.warnings, ev)
		case *stream.Tile:
			raw, err := stream.Encode(ev)
			if err != nil {
				return fmt.Errorf("replay: tile: %w", err)
			}
			c.tiles = append(c.tiles, capturedTile{Session: ev.Session, raw: raw})
		case *stream.DeadLetter:
			c.refused++
		}
	}
	return nil
}

// take returns the captured tiles and counts refusals into rep; warnings
// stay for writeWarnings.
func (c *capture) take(rep *Report) []capturedTile {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.tiles
	c.tiles = nil
	rep.Refused += c.refused
	c.refused = 0
	return t
}
