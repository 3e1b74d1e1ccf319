package vision

import (
	"math"
	"testing"
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
