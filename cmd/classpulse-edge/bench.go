package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"time"

	"gocv.io/x/gocv"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/vision"
)

func init() {
	register("bench", "detect+score every frame of a video on one core; last line: edge frames=N fps=F detect_ms_p50=… score_ms_p50=…", bench)
}

func bench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	video := fs.String("video", "", "video file")
	dir := fs.String("model-dir", "models", "model folder")
	threads := fs.Int("threads", 1, "OpenCV threads (1: the one-core target)")
	track := fs.Int("track", 5, "frames a detection's faces are only followed before the next full detection (0: detect every frame)")
	cpuprofile := fs.String("cpuprofile", "", "write a Go CPU profile of the run here")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if *video == "" {
		return fmt.Errorf("--video is required")
	}
	vision.SetThreads(*threads)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	m, err := vision.LoadModels(*dir)
	if err != nil {
		return err
	}
	defer m.Close()
	vc, err := gocv.VideoCaptureFile(*video)
	if err != nil {
		return err
	}
	defer vc.Close()
	s := vision.NewScorer(m, vision.ScoreConfig{Detect: vision.DetectConfig{Track: *track}})
	defer s.Close()
	frame := gocv.NewMat()
	defer frame.Close()
	var det, score []float64
	faces := 0
	start := time.Now()
	for ctx.Err() == nil && vc.Read(&frame) && !frame.Empty() {
		t0 := time.Now()
		found, err := s.Detect(frame)
		if err != nil {
			return err
		}
		t1 := time.Now()
		if len(found) > 0 {
			faces++
			if _, err := s.ScoreFace(frame, found[0]); err != nil {
				return err
			}
		}
		det = append(det, ms(t1.Sub(t0)))
		score = append(score, ms(time.Since(t1)))
	}
	el := time.Since(start)
	if len(det) == 0 {
		return fmt.Errorf("no frames read from %s", *video)
	}
	fmt.Printf("frames with a face: %d of %d; full detections: %d; detect_ms_mean=%.2f detect_ms_p90=%.2f score_ms_p90=%.2f\n",
		faces, len(det), s.FullDetections(), mean(det), pct(det, 90), pct(score, 90))
	fmt.Printf("edge frames=%d fps=%.1f detect_ms_p50=%.2f score_ms_p50=%.2f\n",
		len(det), float64(len(det))/el.Seconds(), pct(det, 50), pct(score, 50))
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func pct(v []float64, p int) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func mean(v []float64) float64 {
	t := 0.0
	for _, x := range v {
		t += x
	}
	return t / float64(len(v))
}
