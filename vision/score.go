package vision

import (
	"fmt"
	"image"
	"math"

	"gocv.io/x/gocv"

	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/vision/models"
)

// MaskThreshold is the mask score above which a face counts as masked.
// On face-api's demo photos unmasked faces score at most 0.68 (beard and
// shadow), an occluded lower face close to 1.
const MaskThreshold = 0.8

// FaceScore is everything computed for one face in one frame. It stays on
// the machine: only the per-second summary built from it is published.
type FaceScore struct {
	Face
	Attention    float64          `json:"attention"`
	EyesOpen     float64          `json:"eyes_open"`
	GazeOnScreen float64          `json:"gaze_on_screen"`
	Head         stream.Head      `json:"head"`
	Emotions     *stream.Emotions `json:"emotions,omitempty"`
	Learning     *stream.Learning `json:"learning,omitempty"`
	Masked       bool             `json:"masked"`
	MaskScore    float64          `json:"mask_score"`
	// Novelty is the KPCA reconstruction residual of the expression
	// features relative to the fit set (≤ ~1: a face like those fitted).
	Novelty float64 `json:"novelty"`
	// Components are the KPCA coordinates of the face, kept in memory only.
	Components []float64      `json:"-"`
	Landmarks  [68][2]float64 `json:"-"`
}

// ScoreConfig tunes scoring. The zero value works.
type ScoreConfig struct {
	// EmotionOff switches emotion inference off entirely (no emotion
	// consent, or a jurisdiction that forbids it): the expression head's
	// output is never read and Emotions/Learning stay nil.
	EmotionOff bool
	Detect     DetectConfig
}

// Scorer detects and scores faces. It owns its OpenCV buffers and is not
// safe for concurrent use.
type Scorer struct {
	cfg   ScoreConfig
	m     *Models
	det   *detector
	proj  *models.Projector
	crop  gocv.Mat // owned, 112×112 BGR
	outs  [][]float32
	lmOut [][]float32
	z     []float64
}

// NewScorer builds a scorer over m (not owned). Close it when done.
func NewScorer(m *Models, cfg ScoreConfig) *Scorer {
	return &Scorer{
		cfg: cfg, m: m, det: newDetector(m, cfg.Detect), proj: m.kpca.NewProjector(),
		crop: gocv.NewMat(), outs: make([][]float32, 2), lmOut: make([][]float32, 1),
		z: make([]float64, len(m.kpca.Components)),
	}
}

// newFeatureScorer builds a scorer for feature collection only (no KPCA
// yet: `models build` and `models fit` are creating it).
func newFeatureScorer(m *Models) *Scorer {
	return &Scorer{m: m, det: newDetector(m, DetectConfig{}), crop: gocv.NewMat(), outs: make([][]float32, 2)}
}

// Close frees the scorer's buffers.
func (s *Scorer) Close() {
	s.det.Close()
	s.crop.Close()
}

// Detect locates faces in a BGR frame.
func (s *Scorer) Detect(frame gocv.Mat) ([]Face, error) { return s.det.detect(frame) }

// FullDetections counts the full (Haar) detections run so far; with
// DetectConfig.Track the other frames only followed the faces.
func (s *Scorer) FullDetections() int { return s.det.full }

// ScoreFrame detects and scores up to maxFaces faces (0: all), largest first.
func (s *Scorer) ScoreFrame(frame gocv.Mat, maxFaces int) ([]FaceScore, error) {
	faces, err := s.det.detect(frame)
	if err != nil {
		return nil, err
	}
	if maxFaces > 0 && len(faces) > maxFaces {
		faces = faces[:maxFaces]
	}
	out := make([]FaceScore, 0, len(faces))
	for _, f := range faces {
		fs, err := s.ScoreFace(frame, f)
		if err != nil {
			return nil, err
		}
		out = append(out, fs)
	}
	return out, nil
}

// squareIn returns the square around b's centre with b's larger side,
// shifted (and if need be shrunk) to lie inside w×h.
func squareIn(b image.Rectangle, w, h int) image.Rectangle {
	side := min(max(b.Dx(), b.Dy()), w, h)
	cx, cy := (b.Min.X+b.Max.X)/2, (b.Min.Y+b.Max.Y)/2
	x0 := min(max(cx-side/2, 0), w-side)
	y0 := min(max(cy-side/2, 0), h-side)
	return image.Rect(x0, y0, x0+side, y0+side)
}

// ScoreFace runs the nets and heads on one located face.
func (s *Scorer) ScoreFace(frame gocv.Mat, f Face) (FaceScore, error) {
	if err := checkFrame(frame); err != nil {
		return FaceScore{}, err
	}
	sq := squareIn(f.Box, frame.Cols(), frame.Rows())
	if sq.Dx() < 16 {
		return FaceScore{}, fmt.Errorf("%w: face box %v too small", ErrBadImage, f.Box)
	}
	region := frame.Region(sq)
	const size = models.FaceInputSize
	gocv.Resize(region, &s.crop, image.Pt(size, size), 0, 0, gocv.InterpolationLinear)
	region.Close()
	blob := gocv.BlobFromImage(s.crop, 1.0/255, image.Pt(size, size),
		gocv.NewScalar(models.FaceMeanRGB[0], models.FaceMeanRGB[1], models.FaceMeanRGB[2], 0), true, false)
	defer blob.Close()
	fs := FaceScore{Face: f}
	if err := s.m.lm.forward(blob, s.lmOut); err != nil {
		return fs, err
	}
	scale := float64(sq.Dx())
	for i := 0; i < 68; i++ {
		fs.Landmarks[i] = [2]float64{
			float64(sq.Min.X) + float64(s.lmOut[0][2*i])*scale,
			float64(sq.Min.Y) + float64(s.lmOut[0][2*i+1])*scale,
		}
	}
	var crop [68][2]float64
	for i := range crop {
		crop[i] = [2]float64{float64(s.lmOut[0][2*i]) * size, float64(s.lmOut[0][2*i+1]) * size}
	}
	bgr, err := s.crop.DataPtrUint8()
	if err != nil {
		return fs, err
	}
	fs.MaskScore = maskScore(bgr, size, &crop)
	fs.Masked = fs.MaskScore > MaskThreshold
	yaw, pitch, err := headPose(&fs.Landmarks, frame.Cols(), frame.Rows())
	if err == nil {
		fs.Head = stream.Head{Yaw: math.Max(-180, math.Min(180, yaw)), Pitch: math.Max(-90, math.Min(90, pitch))}
		fs.GazeOnScreen = gazeOnScreen(yaw, pitch)
	}
	fs.EyesOpen = eyesOpen(&fs.Landmarks)
	fs.Attention = attentionOf(fs.GazeOnScreen, fs.EyesOpen)
	if err := s.m.expr.forward(blob, s.outs); err != nil {
		return fs, err
	}
	nov, err := s.proj.Project(s.outs[0], s.z)
	if err != nil {
		return fs, err
	}
	fs.Novelty = nov
	fs.Components = append([]float64(nil), s.z...)
	if s.cfg.EmotionOff {
		return fs, nil
	}
	var emo *stream.Emotions
	if !fs.Masked {
		p := s.outs[1]
		emo = &stream.Emotions{Neutral: float64(p[0]), Happy: float64(p[1]), Sad: float64(p[2]), Angry: float64(p[3]),
			Fearful: float64(p[4]), Disgusted: float64(p[5]), Surprised: float64(p[6])}
		fs.Emotions = emo
	}
	l := learningOf(emo, browLowering(&fs.Landmarks), fs.Attention, fs.EyesOpen)
	fs.Learning = &l
	return fs, nil
}

// Features returns the expression net's 256 features for a located face;
// `models fit` collects them to refit the KPCA.
func (s *Scorer) Features(frame gocv.Mat, f Face) ([]float32, error) {
	if err := checkFrame(frame); err != nil {
		return nil, err
	}
	sq := squareIn(f.Box, frame.Cols(), frame.Rows())
	if sq.Dx() < 16 {
		return nil, fmt.Errorf("%w: face box %v too small", ErrBadImage, f.Box)
	}
	region := frame.Region(sq)
	const size = models.FaceInputSize
	gocv.Resize(region, &s.crop, image.Pt(size, size), 0, 0, gocv.InterpolationLinear)
	region.Close()
	blob := gocv.BlobFromImage(s.crop, 1.0/255, image.Pt(size, size),
		gocv.NewScalar(models.FaceMeanRGB[0], models.FaceMeanRGB[1], models.FaceMeanRGB[2], 0), true, false)
	defer blob.Close()
	if err := s.m.expr.forward(blob, s.outs); err != nil {
		return nil, err
	}
	return append([]float32(nil), s.outs[0]...), nil
}
