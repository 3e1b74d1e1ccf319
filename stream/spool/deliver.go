package spool

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// Batch is a run of records read by Next, to be acknowledged with Ack once
// published.
type Batch struct {
	Messages []Message
	end      position
}

// Next reads up to max records from the cursor on, in order, without
// advancing it. An empty batch means nothing is pending.
func (s *Spool) Next(max int) (Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Batch{}, ErrClosed
	}
	var out []Message
	pos := s.cur
	var hdr [recordHeader]byte
	for i := 0; i < len(s.segs) && len(out) < max; i++ {
		sg := s.segs[i]
		if sg.id < pos.seg {
			continue
		}
		if sg.id > pos.seg {
			pos = position{seg: sg.id, off: int64(len(segmentMagic))}
		}
		if pos.off >= sg.size {
			continue
		}
		f, err := os.Open(s.path(segName(sg.id)))
		if err != nil {
			return Batch{}, fmt.Errorf("spool: %w", err)
		}
		r := bufio.NewReaderSize(io.NewSectionReader(f, pos.off, sg.size-pos.off), 64<<10)
		for len(out) < max && pos.off < sg.size {
			m, n, err := readRecord(r, &hdr)
			if err != nil {
				f.Close()
				return Batch{}, fmt.Errorf("spool: segment %d at %d: %w", sg.id, pos.off, err)
			}
			out = append(out, m)
			pos.off += int64(n)
			pos.idx++
		}
		f.Close()
	}
	return Batch{Messages: out, end: pos}, nil
}

// Ack marks b as delivered: the cursor moves past it (unless a drop already
// moved it further) and wholly delivered segments are removed.
func (s *Spool) Ack(b Batch) {
	if len(b.Messages) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !b.end.after(s.cur) {
		return
	}
	// Count what the move delivers from the pending totals, after the
	// segments behind the cursor are gone (pending assumes the cursor is in
	// segs[0]): the batch may span segments, and a drop while it was being
	// published may have removed part of it already.
	before := s.pending()
	s.cur = b.end
	for len(s.segs) > 1 && s.segs[0].id < s.cur.seg {
		_ = os.Remove(s.path(segName(s.segs[0].id)))
		s.segs = s.segs[1:]
	}
	if len(s.segs) > 1 && s.cur.seg == s.segs[0].id && s.cur.off >= s.segs[0].size {
		_ = os.Remove(s.path(segName(s.segs[0].id)))
		s.segs = s.segs[1:]
		s.cur = position{seg: s.segs[0].id, off: int64(len(segmentMagic))}
	}
	s.m.delivered.Add(float64(before - s.pending()))
	s.saveCursor()
	s.updateGauges()
}

// Run delivers spooled records in order through publish until ctx ends. A
// failed publish is retried, with backoff, with the same records, so
// delivery is at-least-once and never reordered. It returns nil when ctx is
// cancelled and an error if called twice.
func (s *Spool) Run(ctx context.Context, publish func(context.Context, []Message) error) error {
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("spool: Run called twice")
	}
	backoff := 100 * time.Millisecond
	for {
		b, err := s.Next(s.cfg.BatchSize)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if len(b.Messages) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-s.notify:
			}
			continue
		}
		if err := publish(ctx, b.Messages); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.m.publishErrors.Inc()
			s.logger.Warn("publish from spool failed, will retry", "records", len(b.Messages), "retry_in", backoff, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, s.cfg.MaxBackoff)
			continue
		}
		backoff = 100 * time.Millisecond
		s.Ack(b)
	}
}

// Flush waits until Run has delivered everything appended so far, or ctx
// ends; it reports whether the spool is empty. A client calls it on
// shutdown with a short deadline: what is left stays on disk for its next
// start.
func (s *Spool) Flush(ctx context.Context) bool {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for s.Pending() > 0 {
		select {
		case <-ctx.Done():
			return s.Pending() == 0
		case <-t.C:
		}
	}
	return true
}
