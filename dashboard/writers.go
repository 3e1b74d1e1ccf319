package dashboard

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// writerPool writes the queued frames of every WebSocket client with a few
// shared goroutines instead of one goroutine per client (docs/performance.md,
// "Dashboard fan-out"). A client with frames to send is on the run queue at
// most once; a worker takes it, writes what it has queued (each frame was
// encoded once for all the clients it goes to) and puts it back at the tail
// if more arrived meanwhile, so one busy client cannot starve the others.
//
// A write blocks only when the peer's socket buffer is full, i.e. for a slow
// client. A worker whose write has lasted stuckAfter is detached: the
// supervisor starts a replacement, and the detached worker exits once its
// write returns (the hub's watchdog kills a client stuck past WriteTimeout,
// which ends the write). A slow client thus delays the others by at most
// stuckAfter, and the extra workers are bounded by the slow clients.
type writerPool struct {
	base       int
	stuckAfter time.Duration

	mu      sync.Mutex
	cond    *sync.Cond
	runq    []*client // FIFO from head
	head    int
	workers map[*writer]struct{} // attached workers
	started bool
	stopped bool
	stop    chan struct{}
	wg      sync.WaitGroup
	// idle: the supervisor sleeps until kick (nothing was written for a
	// while), so an idle dashboard does not wake it every few ms.
	idle atomic.Bool
	kick chan struct{}
}

// writer is one worker; writeStart is when its write in progress began
// (Unix ns), 0 when it is not writing.
type writer struct {
	writeStart atomic.Int64
	detached   bool // under writerPool.mu
}

func newWriterPool() *writerPool {
	p := &writerPool{
		base:       max(2, runtime.GOMAXPROCS(0)),
		stuckAfter: 20 * time.Millisecond,
		workers:    map[*writer]struct{}{},
		stop:       make(chan struct{}),
		kick:       make(chan struct{}, 1),
	}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// schedule puts c on the run queue; the caller has just marked it
// scheduled, so it is there at most once.
func (p *writerPool) schedule(c *client) {
	p.scheduleAll([]*client{c})
}

// scheduleAll puts every client of cs on the run queue (each just marked
// scheduled by the caller) under one lock, as a broadcast does, and wakes
// the workers. The workers start on first use.
func (p *writerPool) scheduleAll(cs []*client) {
	if len(cs) == 0 {
		return
	}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	if !p.started {
		p.started = true
		for range p.base {
			p.spawnLocked()
		}
		p.wg.Add(1)
		go p.supervise()
	}
	p.runq = append(p.runq, cs...)
	p.mu.Unlock()
	if len(cs) == 1 {
		p.cond.Signal()
	} else {
		p.cond.Broadcast()
	}
	if p.idle.Load() {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

func (p *writerPool) spawnLocked() {
	w := &writer{}
	p.workers[w] = struct{}{}
	p.wg.Add(1)
	go p.work(w)
}

// close stops the workers and waits for them; clients still queued are
// being killed by the caller (shutdown), so their frames do not matter.
func (p *writerPool) close() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	close(p.stop)
	p.mu.Unlock()
	p.cond.Broadcast()
	p.wg.Wait()
}

func (p *writerPool) work(w *writer) {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		for p.head == len(p.runq) && !p.stopped && !w.detached {
			p.cond.Wait()
		}
		if p.stopped || w.detached {
			p.mu.Unlock()
			return
		}
		c := p.runq[p.head]
		p.runq[p.head] = nil
		p.head++
		if p.head == len(p.runq) {
			p.runq, p.head = p.runq[:0], 0
		} else if p.head > 1024 && p.head*2 > len(p.runq) {
			n := copy(p.runq, p.runq[p.head:])
			clear(p.runq[n:])
			p.runq, p.head = p.runq[:n], 0
		}
		p.mu.Unlock()
		if c.drain(w) {
			p.schedule(c)
		}
	}
}

// supervise detaches workers stuck in a write and replaces them. After a
// second without any write it sleeps until the next schedule.
func (p *writerPool) supervise() {
	defer p.wg.Done()
	every := p.stuckAfter / 2
	tick := time.NewTicker(every)
	defer tick.Stop()
	quiet := 0 // ticks without a write in progress or queued
	for {
		select {
		case <-p.stop:
			return
		case now := <-tick.C:
			limit := now.Add(-p.stuckAfter).UnixNano()
			busy := false
			p.mu.Lock()
			for w := range p.workers {
				st := w.writeStart.Load()
				busy = busy || st != 0
				if st != 0 && st < limit {
					w.detached = true
					delete(p.workers, w)
					p.spawnLocked()
				}
			}
			busy = busy || p.head < len(p.runq)
			p.mu.Unlock()
			if busy {
				quiet = 0
				continue
			}
			if quiet++; quiet < int(time.Second/every) {
				continue
			}
			// Go idle, unless work arrived meanwhile (schedule appends
			// before it looks at idle, so one of the two sees the other).
			p.idle.Store(true)
			p.mu.Lock()
			pending := p.head < len(p.runq)
			p.mu.Unlock()
			if !pending {
				tick.Stop()
				select {
				case <-p.stop:
					return
				case <-p.kick:
				}
				tick.Reset(every)
			}
			p.idle.Store(false)
			quiet = 0
		}
	}
}

// drain writes the frames c has queued, in order, and reports whether
// more arrived meanwhile (the caller then schedules c again).
func (c *client) drain(w *writer) (more bool) {
	c.qmu.Lock()
	batch := c.q
	c.q = c.spare[:0]
	c.spare = nil
	c.qmu.Unlock()
	// The frames are complete WebSocket frames; the client's frameWriter
	// writes them to the socket in one write (another every corkLimit
	// bytes). Only the write can block on a slow client, so it is timed.
	now := time.Now().UnixNano()
	c.writeStart.Store(now)
	w.writeStart.Store(now)
	err := c.fw.writeFrames(batch, &c.gone)
	w.writeStart.Store(0)
	c.writeStart.Store(0)
	if err != nil {
		c.kill(reasonError) // a no-op if it was killed first (slow, shutdown)
	}
	clear(batch)
	keep := cap(batch) <= 16 // a small array is reused for the next batch
	c.qmu.Lock()
	switch {
	case c.isDead():
		c.q, c.spare, c.scheduled = nil, nil, false
	case len(c.q) == 0:
		c.q, c.scheduled = nil, false
		if keep {
			c.q = batch[:0]
		}
	default:
		more = true
		if keep {
			c.spare = batch[:0]
		}
	}
	c.qmu.Unlock()
	if c.roomWanted.Load() {
		select {
		case c.room <- struct{}{}:
		default:
		}
	}
	return more
}
