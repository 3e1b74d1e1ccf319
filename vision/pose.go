package vision

/*
#cgo !windows pkg-config: opencv4
#cgo CXXFLAGS: --std=c++11
#include <stdlib.h>
#include "cvshim.h"
*/
import "C"

import (
	"errors"
	"math"
	"unsafe"
)

// SetThreads sets how many threads OpenCV may use (1 for the one-core
// benchmark; 0 lets OpenCV choose).
func SetThreads(n int) { C.cp_set_num_threads(C.int(n)) }

// poseModel is a generic adult head in millimetres in a camera-aligned
// frame (x right, y down, z away from the camera), so a frontal face has
// an identity rotation. Indices are the iBUG 68-point landmarks used.
var poseModel = []posePoint{
	{30, 0, 0, 0},         // nose tip
	{8, 0, 330, 65},       // chin
	{36, -225, -170, 135}, // left eye outer corner (image left)
	{45, 225, -170, 135},  // right eye outer corner
	{48, -150, 150, 125},  // mouth corner
	{54, 150, 150, 125},   // mouth corner
	{27, 0, -200, 80},     // nose bridge
}

// posePoint is a landmark index with its position in a head model.
type posePoint struct {
	idx     int
	x, y, z float64
}

var errPose = errors.New("head pose: solvePnP failed")

// headPose estimates yaw and pitch in degrees from 68 landmarks in frame
// pixels with cv::solvePnP, taking the frame's width as focal length and its
// centre as principal point. Yaw > 0: the face turns towards the image's
// right; pitch > 0: the face tilts up.
func headPose(lm *[68][2]float64, width, height int) (yaw, pitch float64, err error) {
	return solvePose(poseModel, lm[:], width, height)
}

// solvePose is headPose for any head model whose indices point into pts.
func solvePose(model []posePoint, pts [][2]float64, width, height int) (yaw, pitch float64, err error) {
	n := len(model)
	obj := make([]C.double, 3*n)
	img := make([]C.double, 2*n)
	for i, p := range model {
		if p.idx < 0 || p.idx >= len(pts) {
			return 0, 0, errPose
		}
		obj[3*i], obj[3*i+1], obj[3*i+2] = C.double(p.x), C.double(p.y), C.double(p.z)
		img[2*i], img[2*i+1] = C.double(pts[p.idx][0]), C.double(pts[p.idx][1])
	}
	var r, t [3]C.double
	ok := C.cp_solve_pnp((*C.double)(unsafe.Pointer(&obj[0])), (*C.double)(unsafe.Pointer(&img[0])), C.int(n),
		C.double(width), C.double(width)/2, C.double(height)/2,
		(*C.double)(unsafe.Pointer(&r[0])), (*C.double)(unsafe.Pointer(&t[0])))
	if ok == 0 || float64(t[2]) <= 0 {
		return 0, 0, errPose
	}
	rot := rodrigues(float64(r[0]), float64(r[1]), float64(r[2]))
	// The face looks along its -z axis; rotate that into camera coordinates.
	fx, fy, fz := -rot[0][2], -rot[1][2], -rot[2][2]
	// Angles are measured from the line of sight to the camera, not from
	// the optical axis: a face at the image's edge that looks into the lens
	// has yaw and pitch 0.
	tx, ty, tz := float64(t[0]), float64(t[1]), float64(t[2])
	yaw = (math.Atan2(fx, -fz) - math.Atan2(-tx, tz)) * 180 / math.Pi
	pitch = (math.Atan2(-fy, math.Hypot(fx, fz)) - math.Atan2(ty, math.Hypot(tx, tz))) * 180 / math.Pi
	if math.IsNaN(yaw) || math.IsNaN(pitch) {
		return 0, 0, errPose
	}
	return yaw, pitch, nil
}

// rodrigues turns a rotation vector into a rotation matrix.
func rodrigues(x, y, z float64) [3][3]float64 {
	th := math.Sqrt(x*x + y*y + z*z)
	if th < 1e-12 {
		return [3][3]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	}
	kx, ky, kz := x/th, y/th, z/th
	c, s := math.Cos(th), math.Sin(th)
	v := 1 - c
	return [3][3]float64{
		{c + kx*kx*v, kx*ky*v - kz*s, kx*kz*v + ky*s},
		{ky*kx*v + kz*s, c + ky*ky*v, ky*kz*v - kx*s},
		{kz*kx*v - ky*s, kz*ky*v + kx*s, c + kz*kz*v},
	}
}
