package vision

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"path/filepath"
	"sort"
	"time"

	"gocv.io/x/gocv"
)

// demoTruth is the hand-made ground truth of face boxes in face-api's demo
// photos (vision/testdata/demo_faces.json).
//
//go:embed testdata/demo_faces.json
var demoTruth []byte

// TruthFace is one hand-labelled face.
type TruthFace struct {
	Box  [4]int `json:"box"` // x0, y0, x1, y1 in the photo's pixels
	Note string `json:"note"`
}

// Rect is the face's box.
func (f TruthFace) Rect() image.Rectangle { return image.Rect(f.Box[0], f.Box[1], f.Box[2], f.Box[3]) }

// TruthImage is the ground truth of one photo.
type TruthImage struct {
	Width  int         `json:"width"`
	Height int         `json:"height"`
	Faces  []TruthFace `json:"faces"`
}

// GroundTruth maps a photo's file name to its faces.
type GroundTruth struct {
	About  string                `json:"about"`
	Images map[string]TruthImage `json:"images"`
}

// DemoGroundTruth returns the ground truth of face-api's demo photos.
func DemoGroundTruth() (*GroundTruth, error) {
	var g GroundTruth
	if err := json.Unmarshal(demoTruth, &g); err != nil {
		return nil, fmt.Errorf("ground truth: %w", err)
	}
	return &g, nil
}

// MatchIoU is the overlap at which a detection counts as finding a
// labelled face. Loose on purpose: Haar frames brow to chin, BlazeFace
// brows to mouth, the labels hairline to chin.
const MatchIoU = 0.3

// IoU is the intersection over union of two boxes.
func IoU(a, b image.Rectangle) float64 {
	in := a.Intersect(b)
	ia := float64(in.Dx() * in.Dy())
	u := float64(a.Dx()*a.Dy()+b.Dx()*b.Dy()) - ia
	if u <= 0 {
		return 0
	}
	return ia / u
}

// MatchFaces pairs found boxes with labelled ones, best overlap first, each
// used once, counting a pair when IoU ≥ minIoU. It returns the true
// positives, the false positives (found, matching nothing) and the misses
// (labelled, not found), and for each labelled face the index of its
// detection or -1.
func MatchFaces(truth, found []image.Rectangle, minIoU float64) (tp, fp, fn int, match []int) {
	type pair struct {
		t, f int
		iou  float64
	}
	var pairs []pair
	for i, t := range truth {
		for j, f := range found {
			if v := IoU(t, f); v >= minIoU {
				pairs = append(pairs, pair{i, j, v})
			}
		}
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].iou > pairs[j].iou })
	match = make([]int, len(truth))
	for i := range match {
		match[i] = -1
	}
	used := make([]bool, len(found))
	for _, p := range pairs {
		if match[p.t] < 0 && !used[p.f] {
			match[p.t], used[p.f] = p.f, true
			tp++
		}
	}
	return tp, len(found) - tp, len(truth) - tp, match
}

// MaskLowerFace paints a surgical-mask-coloured polygon over the lower face
// (jaw line landmarks 1..15 and the nose bridge, 29) of a face whose 68
// landmarks are in img's pixels.
func MaskLowerFace(img *gocv.Mat, lm *[68][2]float64) {
	var pts []image.Point
	for _, i := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 29} {
		pts = append(pts, image.Pt(int(lm[i][0]), int(lm[i][1])))
	}
	pv := gocv.NewPointsVectorFromPoints([][]image.Point{pts})
	defer pv.Close()
	gocv.FillPoly(img, pv, color.RGBA{R: 150, G: 200, B: 235})
}

// DetectorResult is one chain's score on the labelled photos.
type DetectorResult struct {
	Chain          string
	Images         int
	Faces          int // labelled faces
	TP, FP, FN     int
	MsP50, MsMean  float64 // time per full detection
	MsMax          float64
	MaskedFound    bool // the occluded face of the masked image was found
	PerImageMisses map[string]int
}

// Precision is TP/(TP+FP); 1 when nothing was found.
func (r DetectorResult) Precision() float64 {
	if r.TP+r.FP == 0 {
		return 1
	}
	return float64(r.TP) / float64(r.TP+r.FP)
}

// Recall is TP/(TP+FN).
func (r DetectorResult) Recall() float64 {
	if r.TP+r.FN == 0 {
		return 1
	}
	return float64(r.TP) / float64(r.TP+r.FN)
}

// EvalImage is a labelled image for EvaluateDetectors.
type EvalImage struct {
	Name  string
	Img   gocv.Mat
	Truth []image.Rectangle
	// Masked is the index in Truth of a face with a painted mask, or -1.
	Masked int
}

// DemoEvalImages reads face-api's demo photos with their ground truth, and
// adds "sample6-masked": sample6.jpg with the lower half of its left
// woman's face painted over as the mask test does (landmarks from a haar+pigo
// detection). The caller closes every Img.
func DemoEvalImages(m *Models, demoDir string) ([]EvalImage, error) {
	g, err := DemoGroundTruth()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(g.Images))
	for n := range g.Images {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []EvalImage
	closeAll := func() {
		for _, e := range out {
			e.Img.Close()
		}
	}
	for _, n := range names {
		img, err := ReadImage(filepath.Join(demoDir, n))
		if err != nil {
			closeAll()
			return nil, err
		}
		ti := g.Images[n]
		if img.Cols() != ti.Width || img.Rows() != ti.Height {
			img.Close()
			closeAll()
			return nil, fmt.Errorf("ground truth: %s is %dx%d, labelled %dx%d", n, img.Cols(), img.Rows(), ti.Width, ti.Height)
		}
		var truth []image.Rectangle
		for _, f := range ti.Faces {
			truth = append(truth, f.Rect())
		}
		out = append(out, EvalImage{Name: n, Img: img, Truth: truth, Masked: -1})
	}
	for _, e := range out {
		if e.Name != "sample6.jpg" {
			continue
		}
		// The mask goes on the left woman (the first labelled face), with
		// the landmarks of the haar+pigo face on her.
		s := NewScorer(m, ScoreConfig{EmotionOff: true, Detect: DetectConfig{Chain: ChainHaarPigo}})
		faces, err := s.ScoreFrame(e.Img, 0)
		s.Close()
		const idx = 0
		k := -1
		for i, f := range faces {
			if IoU(e.Truth[idx], f.Box) >= MatchIoU {
				k = i
			}
		}
		if err != nil || k < 0 {
			closeAll()
			return nil, fmt.Errorf("masked image: no face to mask in sample6.jpg (%v)", err)
		}
		masked := e.Img.Clone()
		MaskLowerFace(&masked, &faces[k].Landmarks)
		out = append(out, EvalImage{Name: "sample6-masked", Img: masked, Truth: e.Truth, Masked: idx})
		break
	}
	return out, nil
}

// EvaluateDetectors runs each chain's full detection (no tracking) on each
// image repeat times and scores the boxes of the first run against the
// truth.
func EvaluateDetectors(m *Models, imgs []EvalImage, chains []string, repeat int) ([]DetectorResult, error) {
	return EvaluateDetectorsWith(m, imgs, DetectConfig{}, chains, repeat)
}

// EvaluateDetectorsWith is EvaluateDetectors with the settings of base
// (its Chain replaced by each chain in turn, tracking off).
func EvaluateDetectorsWith(m *Models, imgs []EvalImage, base DetectConfig, chains []string, repeat int) ([]DetectorResult, error) {
	repeat = max(repeat, 1)
	var out []DetectorResult
	for _, chain := range chains {
		if err := CheckChain(chain); err != nil {
			return nil, err
		}
		cfg := base
		cfg.Chain, cfg.Track = chain, 0
		d := newDetector(m, cfg)
		r := DetectorResult{Chain: chain, PerImageMisses: map[string]int{}}
		var times []float64
		for _, e := range imgs {
			var faces []Face
			for k := 0; k < repeat; k++ {
				t0 := time.Now()
				f, err := d.detect(e.Img)
				if err != nil {
					d.Close()
					return nil, fmt.Errorf("%s on %s: %w", chain, e.Name, err)
				}
				times = append(times, float64(time.Since(t0).Microseconds())/1000)
				if k == 0 {
					faces = f
				}
			}
			boxes := make([]image.Rectangle, len(faces))
			for i, f := range faces {
				boxes[i] = f.Box
			}
			tp, fp, fn, match := MatchFaces(e.Truth, boxes, MatchIoU)
			r.Images++
			r.Faces += len(e.Truth)
			r.TP, r.FP, r.FN = r.TP+tp, r.FP+fp, r.FN+fn
			r.PerImageMisses[e.Name] = fn
			if e.Masked >= 0 && match[e.Masked] >= 0 {
				r.MaskedFound = true
			}
		}
		d.Close()
		sort.Float64s(times)
		r.MsP50, r.MsMax = times[len(times)/2], times[len(times)-1]
		for _, t := range times {
			r.MsMean += t / float64(len(times))
		}
		out = append(out, r)
	}
	return out, nil
}
