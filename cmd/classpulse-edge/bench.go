package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"github.com/classpulse/classpulse/internal/cli"
	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/vision"
)

func init() {
	register("bench", "detect+score every frame of a video on one core, the largest face followed and scored as in run; last line: edge frames=N fps=F detect_ms_p50=… score_ms_p50=…", bench)
	register("bench detectors", "precision/recall/time of each detector chain on face-api's demo photos against the hand-made ground truth; last line: detectors best=… default=…", benchDetectors)
}

func benchDetectors(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench detectors", flag.ContinueOnError)
	dir := fs.String("model-dir", "models", "model folder")
	demo := fs.String("demo", "build/npm/node_modules/@vladmandic/face-api/demo", "face-api's demo folder (installed by make models)")
	threads := fs.Int("threads", 1, "OpenCV threads (1: the one-core target)")
	repeat := fs.Int("repeat", 5, "timed full detections per image and chain")
	chains := fs.String("detectors", strings.Join(vision.Chains, ","), "comma-separated chains to compare")
	var base vision.DetectConfig
	fs.IntVar(&base.MTCNNWidth, "mtcnn-width", 0, "width the frame is scaled to for the mtcnn chain (0: the detection width, 320)")
	fs.IntVar(&base.MTCNNMinFace, "mtcnn-min-face", 0, "smallest face side the mtcnn chain looks for, in pixels of that image (0: 20)")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	vision.SetThreads(*threads)
	m, err := vision.LoadModels(*dir)
	if err != nil {
		return err
	}
	defer m.Close()
	imgs, err := vision.DemoEvalImages(m, *demo)
	if err != nil {
		return fmt.Errorf("%w (run `make models`, which installs the demo photos)", err)
	}
	defer func() {
		for _, e := range imgs {
			e.Img.Close()
		}
	}()
	res, err := vision.EvaluateDetectorsWith(m, imgs, base, strings.Split(*chains, ","), *repeat)
	if err != nil {
		return err
	}
	faces := 0
	for _, e := range imgs {
		faces += len(e.Truth)
	}
	fmt.Printf("%d images (%d labelled faces, IoU >= %.1f), %d timed runs each, %d OpenCV thread(s)\n", len(imgs), faces, vision.MatchIoU, *repeat, *threads)
	fmt.Printf("%-16s %5s %4s %4s %9s %6s %7s %8s %7s %6s\n", "detector", "found", "tp", "fp", "precision", "recall", "ms_p50", "ms_mean", "ms_max", "masked")
	best := res[0]
	for _, r := range res {
		fmt.Printf("%-16s %5d %4d %4d %9.2f %6.2f %7.1f %8.1f %7.1f %6v\n", r.Chain, r.TP+r.FP, r.TP, r.FP, r.Precision(), r.Recall(), r.MsP50, r.MsMean, r.MsMax, r.MaskedFound)
		if f1(r) > f1(best) {
			best = r
		}
	}
	fmt.Printf("detectors best=%s f1=%.2f precision=%.2f recall=%.2f ms_p50=%.1f default=%s\n", best.Chain, f1(best), best.Precision(), best.Recall(), best.MsP50, vision.DefaultChain)
	return nil
}

func f1(r vision.DetectorResult) float64 {
	p, q := r.Precision(), r.Recall()
	if p+q == 0 {
		return 0
	}
	return 2 * p * q / (p + q)
}

func bench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	video := fs.String("video", "", "video file")
	dir := fs.String("model-dir", "models", "model folder")
	threads := fs.Int("threads", 1, "OpenCV threads (1: the one-core target)")
	track := fs.Int("track", 5, "frames a detection's faces are only followed before the next full detection (0: detect every frame)")
	cpuprofile := fs.String("cpuprofile", "", "write a Go CPU profile of the run here")
	detector := fs.String("detector", vision.DefaultChain, "detector chain: "+strings.Join(vision.Chains, ", "))
	mtcnnWidth := fs.Int("mtcnn-width", 0, "width the frame is scaled to for the mtcnn chain (0: the detection width, 320)")
	mtcnnMin := fs.Int("mtcnn-min-face", 0, "smallest face side the mtcnn chain looks for, in pixels of that image (0: 20)")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if *video == "" {
		return fmt.Errorf("--video is required")
	}
	if err := vision.CheckChain(*detector); err != nil {
		return err
	}
	vision.SetThreads(*threads)
	stopProfile, err := cli.StartCPUProfile(*cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()
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
	s := vision.NewScorer(m, vision.ScoreConfig{Detect: vision.DetectConfig{Track: *track, Chain: *detector, MaxFaces: 1,
		MTCNNWidth: *mtcnnWidth, MTCNNMinFace: *mtcnnMin}})
	defer s.Close()
	frame := gocv.NewMat()
	defer frame.Close()
	var det, score, full []float64
	faces := 0
	start := time.Now()
	for ctx.Err() == nil && vc.Read(&frame) && !frame.Empty() {
		t0 := time.Now()
		n := s.FullDetections()
		found, err := s.Detect(frame)
		if err != nil {
			return err
		}
		t1 := time.Now()
		if s.FullDetections() > n {
			full = append(full, ms(t1.Sub(t0)))
		}
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
	fmt.Printf("detector %s; frames with a face: %d of %d; full detections: %d (full_detect_ms_p50=%.2f max=%.2f); detect_ms_mean=%.2f detect_ms_p90=%.2f score_ms_p90=%.2f\n",
		*detector, faces, len(det), len(full), pct(full, 50), pct(full, 100), mean(det), pct(det, 90), pct(score, 90))
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
