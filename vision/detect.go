package vision

import (
	"fmt"
	"image"
	"math"
	"sort"

	pigo "github.com/esimov/pigo/core"
	"gocv.io/x/gocv"

	"github.com/classpulse/classpulse/vision/models"
)

// Detector chains (DetectConfig.Chain): which detectors find faces and
// which confirm them. Measured against hand-made ground truth on face-api's
// demo photos by `classpulse-edge bench detectors` (docs/edge.md).
const (
	// ChainHaar: Haar cascade boxes as they come.
	ChainHaar = "haar"
	// ChainHaarPigo: Haar boxes kept when pigo scores the same spot; pigo's
	// own scan when Haar finds nothing.
	ChainHaarPigo = "haar+pigo"
	// ChainBlazeFace: BlazeFace short-range (128×128) on the whole frame.
	ChainBlazeFace = "blazeface"
	// ChainBlazeFaceBack: BlazeFace full-range (256×256) on the whole frame.
	ChainBlazeFaceBack = "blazeface-back"
	// ChainHaarBlazeFace: Haar boxes kept when BlazeFace, run on a crop
	// twice the box, finds a face there; BlazeFace on the whole frame when
	// Haar finds nothing.
	ChainHaarBlazeFace = "haar+blazeface"
	// ChainMTCNN: MTCNN's P/R/O-Net cascade on the frame scaled to
	// MTCNNWidth.
	ChainMTCNN = "mtcnn"
)

// DefaultChain is the chain used when DetectConfig.Chain is empty.
const DefaultChain = ChainBlazeFaceBack

// Chains lists every detector chain.
var Chains = []string{ChainHaar, ChainHaarPigo, ChainBlazeFace, ChainBlazeFaceBack, ChainHaarBlazeFace, ChainMTCNN}

// CheckChain reports an unknown chain name.
func CheckChain(name string) error {
	if name == "" {
		return nil
	}
	for _, c := range Chains {
		if c == name {
			return nil
		}
	}
	return fmt.Errorf("unknown detector %q (want one of %v)", name, Chains)
}

// DetectConfig tunes face localisation. The zero value works.
type DetectConfig struct {
	// Chain picks the detectors (ChainHaar ...). Default DefaultChain.
	Chain string
	// BlazeScore is the probability a BlazeFace detection needs, alone or
	// confirming a Haar box. Default 0.5 (MediaPipe's default).
	BlazeScore float64
	// Width is the width the frame is scaled to for detection. Default 320:
	// a face at a laptop camera is still ≥ 40 px there, and Haar's cost
	// falls with the square of it.
	Width int
	// MinFace is the smallest face side in detection pixels. Default 24.
	MinFace int
	// ConfirmQ is the pigo score a Haar box needs to be kept. Default 3.
	ConfirmQ float64
	// RescueQ is the pigo score a face found only by pigo's full scan (Haar
	// missed it) needs. Default 8. The scan runs only when Haar found
	// nothing, so a present face is not lost to Haar's blind spots.
	RescueQ float64
	// Track, for video, is how many frames after a full detection the
	// faces found are only followed: pigo rescans a window about twice the
	// face around each face's last spot, at 0.75..1.33× its size, which
	// costs ~1 ms instead of a full detection. A face pigo scored below
	// TrackQ at the full detection (profile, masked) is held where it was
	// found. A followed face whose best score falls below TrackQ, or a new
	// scene, triggers a full detection at once;
	// after Track followed frames one runs anyway, so a newcomer is found
	// within Track+1 frames. A full detection that found no face holds for
	// the next Track frames too, so an empty seat does not cost a full
	// detection per frame. 0 (the default, right for still images): a full
	// detection on every call.
	Track int
	// MaxFaces keeps only the largest MaxFaces faces of a full detection
	// (0: all). The worker scores one face per frame, so following the
	// others would be wasted work.
	MaxFaces int
	// TrackQ is the pigo score a followed face must keep. Default 3 (as
	// ConfirmQ).
	TrackQ float64
	// MTCNNWidth is the width the colour frame is scaled to (never up) for
	// the mtcnn chain. Default Width: the same detection image size as the
	// other chains (docs/edge.md measures 320, 480 and 640).
	MTCNNWidth int
	// MTCNNMinFace is the smallest face side the mtcnn chain looks for, in
	// pixels of the MTCNNWidth image: it sets the first pyramid level.
	// Default 20 (the reference implementation's).
	MTCNNMinFace int
}

func (c *DetectConfig) applyDefaults() {
	if c.Chain == "" {
		c.Chain = DefaultChain
	}
	if c.BlazeScore <= 0 {
		c.BlazeScore = 0.5
	}
	if c.Width <= 0 {
		c.Width = 320
	}
	if c.MinFace <= 0 {
		c.MinFace = 24
	}
	if c.ConfirmQ == 0 {
		c.ConfirmQ = 3
	}
	if c.RescueQ == 0 {
		c.RescueQ = 8
	}
	if c.TrackQ == 0 {
		c.TrackQ = 3
	}
	if c.MTCNNWidth <= 0 {
		c.MTCNNWidth = c.Width
	}
	if c.MTCNNMinFace <= 0 {
		c.MTCNNMinFace = 20
	}
}

// tracked is a face followed between full detections, in detection-image
// pixels: its box and pigo's view of it (centre and scale).
type tracked struct {
	box             image.Rectangle
	row, col, scale int
	score           float64
	by              string
	// held: pigo does not see this face (profile, mask, looking down)
	// well enough to follow it; its box is held until the next full
	// detection instead of forcing one on every frame.
	held bool
	// anchor: found without pigo; pigo's view is still to be looked up.
	anchor bool
}

// Face is one located face in frame pixels.
type Face struct {
	Box image.Rectangle `json:"box"`
	// Score is the confirming detector's confidence: pigo's score (higher
	// is surer, ≥ 3 kept) for haar+pigo and pigo, BlazeFace's probability
	// for the BlazeFace paths, 1 for bare Haar.
	Score float64 `json:"detector_score"`
	// By names the path that found it: a chain name, or "pigo"/"blazeface"
	// for a face its chain's rescue scan found when Haar saw nobody.
	By string `json:"detector"`
}

// detector holds the buffers for one goroutine's detection.
type detector struct {
	cfg   DetectConfig
	m     *Models
	gray  gocv.Mat // owned; reused between frames
	small gocv.Mat // owned
	color gocv.Mat // owned: the frame scaled for MTCNN
	pix   []uint8
	sub   []uint8 // window copy for pigo

	// Tracking state (cfg.Track > 0): the faces of the last full detection
	// as followed since, and how many frames ago that detection ran.
	tracks []tracked
	since  int
	// full counts full detections (tests and the bench report it).
	full int
}

func newDetector(m *Models, cfg DetectConfig) *detector {
	cfg.applyDefaults()
	// since starts at Track: the first frame gets a full detection.
	return &detector{cfg: cfg, m: m, gray: gocv.NewMat(), small: gocv.NewMat(), color: gocv.NewMat(), since: cfg.Track}
}

func (d *detector) Close() {
	d.gray.Close()
	d.small.Close()
	d.color.Close()
}

// detect finds faces in a BGR frame with the configured chain (see the
// Chain* constants). With cfg.Track > 0 the faces found are followed by
// pigo alone for up to Track frames (see DetectConfig). Faces come largest
// first.
func (d *detector) detect(frame gocv.Mat) ([]Face, error) {
	if err := checkFrame(frame); err != nil {
		return nil, err
	}
	gocv.CvtColor(frame, &d.gray, gocv.ColorBGRToGray)
	scale := float64(d.cfg.Width) / float64(frame.Cols())
	if scale > 1 {
		scale = 1
	}
	sz := image.Pt(int(math.Round(float64(frame.Cols())*scale)), int(math.Round(float64(frame.Rows())*scale)))
	gocv.Resize(d.gray, &d.small, sz, 0, 0, gocv.InterpolationArea)
	gocv.EqualizeHist(d.small, &d.small)
	pix, err := d.small.DataPtrUint8()
	if err != nil {
		return nil, err
	}
	d.pix = append(d.pix[:0], pix...)
	rows, cols := d.small.Rows(), d.small.Cols()
	// With tracking, a frame without faces at the last full detection stays
	// without until the next one is due: an empty seat costs a full
	// detection every Track+1 frames, not every frame.
	if d.cfg.Track > 0 && d.since < d.cfg.Track && (len(d.tracks) == 0 || d.follow(rows, cols)) {
		d.since++
	} else {
		d.tracks, err = d.fullDetect(frame, scale, rows, cols, d.tracks[:0])
		if err != nil {
			return nil, err
		}
		if d.cfg.MaxFaces > 0 && len(d.tracks) > d.cfg.MaxFaces {
			sort.SliceStable(d.tracks, func(i, j int) bool { return d.tracks[i].box.Dx() > d.tracks[j].box.Dx() })
			d.tracks = d.tracks[:d.cfg.MaxFaces]
		}
		if d.cfg.Track > 0 {
			d.anchorTracks(rows, cols)
		}
		d.since = 0
		d.full++
	}
	faces := make([]Face, 0, len(d.tracks))
	bounds := image.Rect(0, 0, frame.Cols(), frame.Rows())
	for _, t := range d.tracks {
		b := t.box
		faces = append(faces, Face{Score: t.score, By: t.by, Box: image.Rect(int(float64(b.Min.X)/scale), int(float64(b.Min.Y)/scale),
			int(float64(b.Max.X)/scale), int(float64(b.Max.Y)/scale)).Intersect(bounds)})
	}
	sortFaces(faces)
	return faces, nil
}

// blazeGrow scales BlazeFace's box (brows to chin, tight on the cheeks)
// about its centre to the framing of a Haar box, which the landmark and
// expression heads were tuned on: on the demo photos a Haar box is 1.17 to
// 1.37 times as wide as BlazeFace's on the same face.
const blazeGrow = 1.25

// blazeShift moves the grown box down by this share of its side: a Haar
// box's centre sits ~4% of its side above BlazeFace's.
const blazeShift = -0.04

// blazeBox is a detection's square box in the pixels it was found in.
func blazeBox(d models.BlazeDetection) image.Rectangle {
	side := math.Max(d.W, d.H) * blazeGrow
	cy := d.CY + side*blazeShift
	return image.Rect(int(math.Round(d.CX-side/2)), int(math.Round(cy-side/2)), int(math.Round(d.CX+side/2)), int(math.Round(cy+side/2)))
}

// fullDetect is a full detection by the configured chain of frame, whose
// detection image (gray, equalised) is frame scaled by scale to cols×rows;
// it appends the faces, in detection-image pixels, to dst.
func (d *detector) fullDetect(frame gocv.Mat, scale float64, rows, cols int, dst []tracked) ([]tracked, error) {
	// Scale step 1.1: 1.15 scans 25% faster but loses the woman on the
	// right of sample5.jpg (TestFacesFoundWhereThePeopleAre), 1.2 also
	// breaks the shift and mask tests. With tracking, speed comes from
	// scanning less often, not more coarsely.
	switch d.cfg.Chain {
	case ChainBlazeFace, ChainBlazeFaceBack:
		net := d.m.blaze
		if d.cfg.Chain == ChainBlazeFaceBack {
			net = d.m.blazeBack
		}
		dets, err := net.detect(frame, d.cfg.BlazeScore)
		if err != nil {
			return dst, err
		}
		for _, det := range dets {
			fb := blazeBox(det)
			b := image.Rect(int(float64(fb.Min.X)*scale), int(float64(fb.Min.Y)*scale), int(float64(fb.Max.X)*scale), int(float64(fb.Max.Y)*scale))
			if b.Dx() >= d.cfg.MinFace {
				dst = append(dst, d.track(b, det.Score, d.cfg.Chain))
			}
		}
		return dst, nil
	}
	if d.cfg.Chain == ChainMTCNN {
		return d.mtcnnDetect(frame, scale, dst)
	}
	boxes := d.m.haar.DetectMultiScaleWithParams(d.small, 1.1, 4, 0, image.Pt(d.cfg.MinFace, d.cfg.MinFace), image.Pt(0, 0))
	switch d.cfg.Chain {
	case ChainHaar:
		for _, b := range boxes {
			dst = append(dst, d.track(b, 1, ChainHaar))
		}
		return dst, nil
	case ChainHaarBlazeFace:
		return d.haarBlaze(frame, scale, boxes, rows, cols, dst)
	}
	for _, b := range boxes {
		if det, ok := d.pigoScore(b, rows, cols); ok && float64(det.Q) >= d.cfg.ConfirmQ {
			dst = append(dst, tracked{box: b, row: det.Row, col: det.Col, scale: det.Scale, score: float64(det.Q), by: "haar+pigo"})
		}
	}
	if len(boxes) == 0 {
		for _, det := range d.pigoScan(rows, cols, 0, 0, cols, rows, d.cfg.MinFace, min(rows, cols)) {
			if det.Q < float32(d.cfg.RescueQ) {
				continue
			}
			// pigo's boxes are tight on the inner face; Haar's include the
			// brow and chin. Grow to match, so both feed the CNN alike.
			s := int(float64(det.Scale) * 1.15)
			dst = append(dst, tracked{box: image.Rect(det.Col-s/2, det.Row-s/2, det.Col+s/2, det.Row+s/2),
				row: det.Row, col: det.Col, scale: det.Scale, score: float64(det.Q), by: "pigo"})
		}
	}
	return dst, nil
}

// mtcnnDetect runs MTCNN on the frame scaled to MTCNNWidth and appends
// its faces as square boxes on the longer side of MTCNN's (eyebrows to
// chin), in detection-image pixels.
func (d *detector) mtcnnDetect(frame gocv.Mat, scale float64, dst []tracked) ([]tracked, error) {
	img := frame
	k := math.Min(1, float64(d.cfg.MTCNNWidth)/float64(frame.Cols()))
	if k < 1 {
		sz := image.Pt(max(12, int(math.Round(float64(frame.Cols())*k))), max(12, int(math.Round(float64(frame.Rows())*k))))
		gocv.Resize(frame, &d.color, sz, 0, 0, gocv.InterpolationArea)
		img = d.color
	}
	faces, err := d.m.mtcnn.detect(img, d.cfg.MTCNNMinFace)
	if err != nil {
		return dst, err
	}
	for _, f := range faces {
		side := math.Max(f.X2-f.X1, f.Y2-f.Y1) / k * scale
		cx, cy := (f.X1+f.X2)/2/k*scale, (f.Y1+f.Y2)/2/k*scale
		b := image.Rect(int(math.Round(cx-side/2)), int(math.Round(cy-side/2)), int(math.Round(cx+side/2)), int(math.Round(cy+side/2)))
		if b.Dx() >= 8 {
			dst = append(dst, d.track(b, f.Score, ChainMTCNN))
		}
	}
	return dst, nil
}

// haarBlaze keeps the Haar boxes in which BlazeFace, run on a crop twice
// the box's size around it, finds a face of about the box's size near its
// centre; when Haar found nothing, BlazeFace scans the whole frame.
// Tracking state comes from pigo's view of each kept face.
func (d *detector) haarBlaze(frame gocv.Mat, scale float64, boxes []image.Rectangle, rows, cols int, dst []tracked) ([]tracked, error) {
	bounds := image.Rect(0, 0, frame.Cols(), frame.Rows())
	add := func(b image.Rectangle, score float64, by string) {
		dst = append(dst, d.track(b, score, by))
	}
	for _, b := range boxes {
		// The Haar box in frame pixels and a crop twice its side around it.
		fb := image.Rect(int(float64(b.Min.X)/scale), int(float64(b.Min.Y)/scale), int(float64(b.Max.X)/scale), int(float64(b.Max.Y)/scale))
		side := fb.Dx()
		c := fb.Min.Add(fb.Max).Div(2)
		crop := image.Rect(c.X-side, c.Y-side, c.X+side, c.Y+side).Intersect(bounds)
		if crop.Dx() < 16 || crop.Dy() < 16 {
			continue
		}
		region := frame.Region(crop)
		dets, err := d.m.blaze.detect(region, d.cfg.BlazeScore)
		region.Close()
		if err != nil {
			return dst, err
		}
		for _, det := range dets {
			cx, cy := float64(crop.Min.X)+det.CX, float64(crop.Min.Y)+det.CY
			if math.Abs(cx-float64(c.X)) <= float64(side)/4 && math.Abs(cy-float64(c.Y)) <= float64(side)/4 &&
				det.W >= 0.3*float64(side) && det.W <= 1.2*float64(side) {
				add(b, det.Score, ChainHaarBlazeFace)
				break
			}
		}
	}
	if len(boxes) == 0 {
		dets, err := d.m.blaze.detect(frame, d.cfg.BlazeScore)
		if err != nil {
			return dst, err
		}
		for _, det := range dets {
			fb := blazeBox(det)
			b := image.Rect(int(float64(fb.Min.X)*scale), int(float64(fb.Min.Y)*scale), int(float64(fb.Max.X)*scale), int(float64(fb.Max.Y)*scale))
			if b.Dx() >= d.cfg.MinFace {
				add(b, det.Score, ChainBlazeFace)
			}
		}
	}
	return dst, nil
}

// track is a face found by a chain without pigo. It starts held; anchor
// gives it pigo's view once the faces to follow are chosen.
func (d *detector) track(b image.Rectangle, score float64, by string) tracked {
	return tracked{box: b, score: score, by: by, held: true, anchor: true}
}

// anchorTracks looks up pigo's view (centre and scale) of each face found
// without pigo, so follow can use it; a face pigo scores below TrackQ
// stays held.
func (d *detector) anchorTracks(rows, cols int) {
	for i := range d.tracks {
		t := &d.tracks[i]
		if !t.anchor {
			continue
		}
		t.anchor = false
		if det, ok := d.pigoScore(t.box, rows, cols); ok && float64(det.Q) >= d.cfg.TrackQ {
			t.row, t.col, t.scale, t.held = det.Row, det.Col, det.Scale, false
		}
	}
}

// follow moves every tracked face to pigo's best detection near its last
// spot (held faces stay put). It reports false, leaving the tracks to be
// replaced, when a followed face is lost (score below TrackQ).
func (d *detector) follow(rows, cols int) bool {
	for i := range d.tracks {
		t := &d.tracks[i]
		if t.held {
			continue
		}
		s := t.scale
		x0, y0 := max(t.col-s, 0), max(t.row-s, 0)
		x1, y1 := min(t.col+s, cols), min(t.row+s, rows)
		var best pigo.Detection
		found := false
		for _, det := range d.pigoScan(rows, cols, x0, y0, x1, y1, s*3/4, s*4/3) {
			if abs(det.Col-t.col) <= s/2 && abs(det.Row-t.row) <= s/2 && (!found || det.Q > best.Q) {
				best, found = det, true
			}
		}
		if !found || float64(best.Q) < d.cfg.TrackQ {
			return false
		}
		// Move the box with pigo's centre and scale it with pigo's size, so
		// a Haar box keeps its brow-to-chin framing.
		k := float64(best.Scale) / float64(t.scale)
		bx := float64(t.box.Min.X+t.box.Max.X)/2 + float64(best.Col-t.col)
		by := float64(t.box.Min.Y+t.box.Max.Y)/2 + float64(best.Row-t.row)
		hw, hh := float64(t.box.Dx())*k/2, float64(t.box.Dy())*k/2
		t.box = image.Rect(int(math.Round(bx-hw)), int(math.Round(by-hh)), int(math.Round(bx+hw)), int(math.Round(by+hh)))
		t.row, t.col, t.scale, t.score = best.Row, best.Col, best.Scale, float64(best.Q)
	}
	return true
}

// pigoScore is pigo's best detection for a face the size of b near b's
// centre; ok is false when there is none.
func (d *detector) pigoScore(b image.Rectangle, rows, cols int) (best pigo.Detection, ok bool) {
	s := b.Dx()
	pad := s / 3
	x0, y0 := max(b.Min.X-pad, 0), max(b.Min.Y-pad, 0)
	x1, y1 := min(b.Max.X+pad, cols), min(b.Max.Y+pad, rows)
	cx, cy := (b.Min.X+b.Max.X)/2, (b.Min.Y+b.Max.Y)/2
	for _, det := range d.pigoScan(rows, cols, x0, y0, x1, y1, s*6/10, s*11/10) {
		if abs(det.Col-cx) <= s/4 && abs(det.Row-cy) <= s/4 && (!ok || det.Q > best.Q) {
			best, ok = det, true
		}
	}
	return best, ok
}

// pigoScan runs pigo over the window [x0,x1)×[y0,y1) of the detection image
// and clusters the hits; coordinates come back in detection-image pixels.
func (d *detector) pigoScan(rows, cols, x0, y0, x1, y1, minSize, maxSize int) []pigo.Detection {
	w, h := x1-x0, y1-y0
	if w < 8 || h < 8 || minSize < 8 {
		return nil
	}
	sub := d.pix
	if w != cols || h != rows {
		if cap(d.sub) < w*h {
			d.sub = make([]uint8, w*h)
		}
		sub = d.sub[:w*h]
		for y := 0; y < h; y++ {
			copy(sub[y*w:(y+1)*w], d.pix[(y0+y)*cols+x0:(y0+y)*cols+x1])
		}
	}
	dets := d.m.pigo.RunCascade(pigo.CascadeParams{
		MinSize: minSize, MaxSize: max(maxSize, minSize), ShiftFactor: 0.1, ScaleFactor: 1.1,
		ImageParams: pigo.ImageParams{Pixels: sub, Rows: h, Cols: w, Dim: w},
	}, 0)
	dets = d.m.pigo.ClusterDetections(dets, 0.2)
	for i := range dets {
		dets[i].Row += y0
		dets[i].Col += x0
	}
	return dets
}

// sortFaces orders faces largest first, left to right among equals, so the
// order (and "the largest face") does not depend on detector internals.
func sortFaces(faces []Face) {
	sort.Slice(faces, func(i, j int) bool {
		a, b := faces[i].Box, faces[j].Box
		if a.Dx() != b.Dx() {
			return a.Dx() > b.Dx()
		}
		return a.Min.X < b.Min.X
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// checkFrame guards OpenCV calls: an empty or odd Mat would throw in C++.
func checkFrame(m gocv.Mat) error {
	if m.Empty() {
		return fmt.Errorf("%w: empty frame", ErrBadImage)
	}
	if m.Type() != gocv.MatTypeCV8UC3 {
		return fmt.Errorf("%w: frame type %v, want 8-bit BGR", ErrBadImage, m.Type())
	}
	if m.Cols() < 32 || m.Rows() < 32 || m.Cols() > 8192 || m.Rows() > 8192 {
		return fmt.Errorf("%w: frame %dx%d outside 32..8192 pixels", ErrBadImage, m.Cols(), m.Rows())
	}
	return nil
}
