package vision

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"gocv.io/x/gocv"
)

// frameQueue is a bounded queue of frames that drops the oldest when full,
// so a slow scorer sees fresh frames instead of falling further behind.
// Mats are allocated once and recycled: capture takes one from free, fills
// it and pushes it; the scorer pops it and hands it back with release.
type frameQueue struct {
	q, free chan *gocv.Mat
	dropped func()
}

func newFrameQueue(n int, dropped func()) *frameQueue {
	fq := &frameQueue{q: make(chan *gocv.Mat, n), free: make(chan *gocv.Mat, n+2), dropped: dropped}
	for i := 0; i < n+2; i++ {
		m := gocv.NewMat()
		fq.free <- &m
	}
	return fq
}

// get returns a Mat to fill: a free one, or else the oldest queued frame,
// which is dropped.
func (fq *frameQueue) get() *gocv.Mat {
	select {
	case m := <-fq.free:
		return m
	default:
	}
	select {
	case m := <-fq.q:
		fq.dropped()
		return m
	case m := <-fq.free:
		return m
	}
}

// push queues a filled Mat; the queue now owns it.
func (fq *frameQueue) push(m *gocv.Mat) {
	select {
	case fq.q <- m:
	default: // full: drop the oldest, keep the newest
		old := <-fq.q
		fq.dropped()
		fq.free <- old
		fq.q <- m
	}
}

func (fq *frameQueue) release(m *gocv.Mat) { fq.free <- m }

// close frees every Mat once capture and scoring have stopped.
func (fq *frameQueue) close() {
	for _, c := range []chan *gocv.Mat{fq.q, fq.free} {
		for {
			select {
			case m := <-c:
				m.Close()
				continue
			default:
			}
			break
		}
	}
}

// openSource opens a camera by index ("0") or a video file; file says
// which.
func openSource(src string) (vc *gocv.VideoCapture, file bool, err error) {
	if idx, e := strconv.Atoi(src); e == nil {
		vc, err = gocv.OpenVideoCapture(idx)
	} else {
		vc, err = gocv.VideoCaptureFile(src)
		file = true
	}
	if err != nil {
		return nil, false, fmt.Errorf("capture: open %q: %w", src, err)
	}
	if !vc.IsOpened() {
		vc.Close()
		return nil, false, fmt.Errorf("capture: cannot open %q", src)
	}
	return vc, file, nil
}

// capture reads frames at most fps per second into fq until ctx ends or
// the source ends (loop rewinds a file instead). A file plays in real
// time: at its own frame rate when that is below fps, else at fps with the
// frames in between skipped, so a summary window covers the same span of
// video as of wall clock.
func capture(ctx context.Context, vc *gocv.VideoCapture, fq *frameQueue, fps int, file, loop bool, onFrame func()) error {
	period := time.Second / time.Duration(fps)
	per := 1.0 // source frames per tick
	if rate := vc.Get(gocv.VideoCaptureFPS); file && rate > 0 && rate <= 1000 {
		if rate < float64(fps) {
			period = time.Duration(float64(time.Second) / rate)
		}
		per = rate * period.Seconds()
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	misses := 0
	// due counts source frames by the wall clock, not by ticks received: a
	// ticker drops ticks when this goroutine is starved (a loaded machine),
	// and counting ticks would then play the file slower than real time.
	start, consumed := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		due := float64(time.Since(start)/period) * per
		n := max(int(due+1e-9)-consumed, 1)
		if n > 1 {
			vc.Grab(n - 1)
		}
		consumed += n
		m := fq.get()
		if !vc.Read(m) || m.Empty() {
			fq.release(m)
			if loop && misses == 0 {
				vc.Set(gocv.VideoCapturePosFrames, 0)
				start, consumed = time.Now(), 0
				misses++
				continue
			}
			return nil
		}
		misses = 0
		onFrame()
		fq.push(m)
	}
}
