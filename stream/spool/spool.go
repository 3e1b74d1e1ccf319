package spool

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Spool. Only Dir is required; every other field
// documents its default.
type Config struct {
	// Dir is the folder that holds the segment files and the cursor. It is
	// created if missing. Required.
	Dir string
	// MaxBytes bounds the disk use of all segments together. When an append
	// would exceed it, the oldest segment is dropped and its undelivered
	// records are counted as dropped. Default 64 MiB.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file is started, and so
	// the granularity of dropping. Default MaxBytes/16, at least 4 KiB.
	SegmentBytes int64
	// BatchSize is the most records Run hands to publish at once. Default 500.
	BatchSize int
	// MaxBackoff caps the wait between failed publish attempts. Default 5s.
	MaxBackoff time.Duration
	// NoSync skips the fsync after each append. Default false: an appended
	// record survives a power cut once Append returns.
	NoSync bool
}

func (c *Config) applyDefaults() {
	if c.MaxBytes <= 0 {
		c.MaxBytes = 64 << 20
	}
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = max(c.MaxBytes/16, 4<<10)
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return errors.New("spool: no folder given")
	}
	if c.SegmentBytes*2 > c.MaxBytes {
		return fmt.Errorf("spool: segment size %d must be at most half of the byte limit %d", c.SegmentBytes, c.MaxBytes)
	}
	return nil
}

type segment struct {
	id      uint64
	size    int64
	records int
}

// Spool is the on-disk queue. Append, Next and Ack are safe for concurrent
// use; Run delivers and may be called once.
type Spool struct {
	cfg    Config
	logger *slog.Logger
	m      *metrics

	mu     sync.Mutex
	segs   []segment // ascending ids; the cursor is always in segs[0]
	tail   *os.File  // open for appending to segs[len(segs)-1]
	cur    position
	buf    []byte
	closed bool

	notify  chan struct{}
	running atomic.Bool
}

// Open opens or creates the spool in cfg.Dir, cutting off a torn tail left
// by a crash. reg may be nil (no metrics); logger may be nil.
func Open(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Spool, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{cfg: cfg, logger: logger.With("component", "spool"), m: newMetrics(reg), notify: make(chan struct{}, 1)}
	if err := s.load(); err != nil {
		return nil, err
	}
	s.updateGauges()
	return s, nil
}

func segName(id uint64) string { return fmt.Sprintf("%016d.seg", id) }

func (s *Spool) path(name string) string { return filepath.Join(s.cfg.Dir, name) }

// load scans the folder: every segment is checked record by record, a bad or
// torn tail is cut off, and the cursor is read (or reset to the start).
func (s *Spool) load() error {
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	var ids []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok || e.IsDir() {
			continue
		}
		id, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		seg, err := s.scan(id)
		if err != nil {
			return err
		}
		if seg != nil {
			s.segs = append(s.segs, *seg)
		}
	}
	cur, err := readCursor(s.path(cursorFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		s.logger.Warn("cursor unreadable, delivering from the oldest record (duplicates possible)", "err", err)
	}
	if len(s.segs) == 0 {
		next := uint64(1)
		if err == nil {
			next = cur.seg + 1
		}
		if err := s.createSegment(next); err != nil {
			return err
		}
		s.cur = position{seg: next, off: int64(len(segmentMagic))}
		return nil
	}
	s.cur = s.clampCursor(cur, err == nil)
	// Segments wholly before the cursor were delivered; remove leftovers.
	for len(s.segs) > 0 && s.segs[0].id < s.cur.seg {
		_ = os.Remove(s.path(segName(s.segs[0].id)))
		s.segs = s.segs[1:]
	}
	last := s.segs[len(s.segs)-1]
	f, err := os.OpenFile(s.path(segName(last.id)), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.tail = f
	return nil
}

// clampCursor maps a stored cursor onto the segments that exist.
func (s *Spool) clampCursor(c position, ok bool) position {
	first := position{seg: s.segs[0].id, off: int64(len(segmentMagic))}
	if !ok || c.seg < s.segs[0].id {
		return first
	}
	for _, sg := range s.segs {
		if sg.id == c.seg {
			if c.off < int64(len(segmentMagic)) || c.off > sg.size || c.idx < 0 || c.idx > sg.records {
				return position{seg: sg.id, off: int64(len(segmentMagic))}
			}
			return c
		}
		if sg.id > c.seg {
			return position{seg: sg.id, off: int64(len(segmentMagic))}
		}
	}
	// Cursor beyond every segment: everything was delivered.
	last := s.segs[len(s.segs)-1]
	return position{seg: last.id, off: last.size, idx: last.records}
}

// scan checks one segment and truncates it after its last good record. It
// returns nil for a segment without a valid magic, which it removes.
func (s *Spool) scan(id uint64) (*segment, error) {
	p := s.path(segName(id))
	f, err := os.OpenFile(p, os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	magic := make([]byte, len(segmentMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != segmentMagic {
		s.logger.Warn("removing spool segment without a valid header", "segment", p)
		f.Close()
		return nil, os.Remove(p)
	}
	seg := &segment{id: id, size: int64(len(segmentMagic))}
	var hdr [recordHeader]byte
	for {
		_, n, err := readRecord(r, &hdr)
		if err == io.EOF {
			return seg, nil
		}
		if err != nil {
			st, _ := f.Stat()
			lost := int64(0)
			if st != nil {
				lost = st.Size() - seg.size
			}
			s.logger.Warn("cutting off a torn or corrupt spool tail", "segment", p, "at", seg.size, "bytes_lost", lost, "err", err)
			s.m.dropped.WithLabelValues("corrupt").Inc()
			if err := f.Truncate(seg.size); err != nil {
				return nil, fmt.Errorf("spool: truncate %s: %w", p, err)
			}
			return seg, nil
		}
		seg.size += int64(n)
		seg.records++
	}
}

func (s *Spool) createSegment(id uint64) error {
	f, err := os.OpenFile(s.path(segName(id)), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := f.Write([]byte(segmentMagic)); err != nil {
		f.Close()
		return fmt.Errorf("spool: %w", err)
	}
	if s.tail != nil {
		s.tail.Close()
	}
	s.tail = f
	s.segs = append(s.segs, segment{id: id, size: int64(len(segmentMagic))})
	return nil
}

// Append writes msgs as one batch at the end of the spool. When it returns
// nil the records are on disk (fsynced unless NoSync). If the spool would
// exceed MaxBytes, the oldest segments are dropped first.
func (s *Spool) Append(msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	buf := s.buf[:0]
	var err error
	for i := range msgs {
		if buf, err = appendRecord(buf, &msgs[i]); err != nil {
			return err
		}
	}
	s.buf = buf
	if int64(len(buf))+int64(len(segmentMagic)) > s.cfg.SegmentBytes {
		return fmt.Errorf("%w: batch of %d bytes exceeds the segment size %d", ErrTooLarge, len(buf), s.cfg.SegmentBytes)
	}
	last := &s.segs[len(s.segs)-1]
	if last.records > 0 && last.size+int64(len(buf)) > s.cfg.SegmentBytes {
		if err := s.createSegment(last.id + 1); err != nil {
			return err
		}
		last = &s.segs[len(s.segs)-1]
	}
	if _, err := s.tail.Write(buf); err != nil {
		// A partial write is a torn tail; cut it so later records stay readable.
		_ = s.tail.Truncate(last.size)
		return fmt.Errorf("spool: append: %w", err)
	}
	if !s.cfg.NoSync {
		if err := s.tail.Sync(); err != nil {
			return fmt.Errorf("spool: sync: %w", err)
		}
	}
	last.size += int64(len(buf))
	last.records += len(msgs)
	s.m.appended.Add(float64(len(msgs)))
	s.enforceLimit()
	s.updateGauges()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

// enforceLimit drops the oldest segments while the spool is over MaxBytes.
// The tail segment is never dropped.
func (s *Spool) enforceLimit() {
	for s.totalBytes() > s.cfg.MaxBytes && len(s.segs) > 1 {
		old := s.segs[0]
		lost := old.records
		if s.cur.seg == old.id {
			lost -= s.cur.idx
		}
		if err := os.Remove(s.path(segName(old.id))); err != nil {
			s.logger.Error("cannot remove full spool segment", "err", err)
			return
		}
		s.segs = s.segs[1:]
		s.cur = position{seg: s.segs[0].id, off: int64(len(segmentMagic))}
		s.m.dropped.WithLabelValues("full").Add(float64(lost))
		s.logger.Warn("spool full: dropped the oldest undelivered records", "records", lost, "max_bytes", s.cfg.MaxBytes)
		s.saveCursor()
	}
}

func (s *Spool) totalBytes() int64 {
	var n int64
	for _, sg := range s.segs {
		n += sg.size
	}
	return n
}

// Pending reports how many records wait for delivery.
func (s *Spool) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending()
}

func (s *Spool) pending() int {
	n := -s.cur.idx
	for _, sg := range s.segs {
		n += sg.records
	}
	return n
}

func (s *Spool) updateGauges() {
	s.m.pending.Set(float64(s.pending()))
	s.m.bytes.Set(float64(s.totalBytes()))
}

// Close closes the spool. Undelivered records stay on disk for the next Open.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.tail.Close()
}
