// Package vision is the edge pipeline of DESIGN.md §7, run on the learner's
// machine through OpenCV (gocv, cgo): capture from a camera or video file
// into a bounded drop-oldest queue; face localisation (Haar cascade fast
// path, every box confirmed by pigo's cascade, pigo's own scan when Haar
// finds nothing); face-api's expression and 68-point landmark nets,
// converted to ONNX, in OpenCV's DNN module; KPCA of the CNN features;
// heads for attention (solvePnP head pose, eye openness, gaze, presence),
// emotions, learning emotions and a mask flag; and the per-second summary
// that is the only thing the worker emits.
//
// It does not publish (the spool in stream/spool and the producer do), does
// not own the consent record (vision/consent) and has no pure-Go model code
// (vision/models). Only cmd/classpulse-edge imports it: the server binary
// never links OpenCV.
package vision
