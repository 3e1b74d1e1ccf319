package vision

import (
	"image"
	"math"
	"testing"

	"gocv.io/x/gocv"
)

// project places the pose model's points in an image for a known yaw and
// pitch, as a camera with focal length f at distance dist would see them.
func project(yawDeg, pitchDeg, f, dist float64, w, h int) *[68][2]float64 {
	var lm [68][2]float64
	y, p := yawDeg*math.Pi/180, pitchDeg*math.Pi/180
	for _, m := range poseModel {
		// Turn the face: yaw about the y axis, pitch about the x axis.
		x1 := m.x*math.Cos(y) - m.z*math.Sin(y)
		z1 := m.x*math.Sin(y) + m.z*math.Cos(y)
		y2 := m.y*math.Cos(p) + z1*math.Sin(p)
		z2 := -m.y*math.Sin(p) + z1*math.Cos(p)
		lm[m.idx] = [2]float64{float64(w)/2 + f*x1/(z2+dist), float64(h)/2 + f*y2/(z2+dist)}
	}
	return &lm
}

func TestHeadPoseRecoversKnownRotation(t *testing.T) {
	tests := []struct{ yaw, pitch float64 }{{0, 0}, {30, 0}, {-30, 0}, {0, 20}, {0, -20}, {25, 15}}
	for _, tc := range tests {
		lm := project(tc.yaw, tc.pitch, 640, 2000, 640, 480)
		yaw, pitch, err := headPose(lm, 640, 480)
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if math.Abs(yaw-tc.yaw) > 3 || math.Abs(pitch-tc.pitch) > 3 {
			t.Errorf("yaw/pitch = %.1f/%.1f, want %.0f/%.0f", yaw, pitch, tc.yaw, tc.pitch)
		}
	}
}

// TestHeadPoseSignAndCentreOnRealFaces checks yaw's sign and zero on the
// demo photos, where no true angle is known: the mirror image of a face
// must get the opposite yaw (a bias in the centre would shift both the
// same way), and a face whose nose tip sits clearly off the middle of the
// eyes turns that way (yaw > 0: towards the image's right).
func TestHeadPoseSignAndCentreOnRealFaces(t *testing.T) {
	s := NewScorer(loadTestModels(t), ScoreConfig{EmotionOff: true})
	defer s.Close()
	for _, name := range []string{"sample3.jpg", "sample6.jpg"} {
		img := readDemo(t, name)
		flipped := gocv.NewMat()
		defer flipped.Close()
		gocv.Flip(img, &flipped, 1)
		a, err := s.ScoreFrame(img, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.ScoreFrame(flipped, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(a) < 3 || len(a) != len(b) {
			t.Fatalf("%s: %d faces, %d mirrored", name, len(a), len(b))
		}
		for _, f := range a {
			mirror := image.Rect(img.Cols()-f.Box.Max.X, f.Box.Min.Y, img.Cols()-f.Box.Min.X, f.Box.Max.Y)
			var g *FaceScore
			for i := range b {
				if IoU(b[i].Box, mirror) > 0.7 {
					g = &b[i]
				}
			}
			if g == nil {
				t.Errorf("%s: face %v has no mirror", name, f.Box)
				continue
			}
			if bias := (f.Head.Yaw + g.Head.Yaw) / 2; math.Abs(bias) > 5 {
				t.Errorf("%s: face %v yaw %.1f, mirrored %.1f: %.1f° off antisymmetric", name, f.Box, f.Head.Yaw, g.Head.Yaw, bias)
			}
			lm := &f.Landmarks
			off := (lm[30][0] - (lm[36][0]+lm[45][0])/2) / (lm[45][0] - lm[36][0])
			if math.Abs(off) > 0.1 && (off > 0) != (f.Head.Yaw > 0) {
				t.Errorf("%s: face %v nose %.2f of the eye span off centre, yet yaw %.1f", name, f.Box, off, f.Head.Yaw)
			}
		}
	}
}
