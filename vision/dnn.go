package vision

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/classpulse/classpulse/vision/models"
	"gocv.io/x/gocv"
)

// cnn is one converted face-api net loaded into OpenCV's DNN module.
type cnn struct {
	net  gocv.Net
	outs []string
	size []int // expected length of each output
}

// readONNX loads an ONNX file into OpenCV's DNN module on its CPU backend.
// The caller has verified the file's checksum against the manifest:
// OpenCV aborts the process on a malformed file.
func readONNX(path string) (gocv.Net, error) {
	net := gocv.ReadNetFromONNX(path)
	if net.Empty() {
		net.Close()
		return gocv.Net{}, fmt.Errorf("%w: OpenCV could not load %s", models.ErrModel, path)
	}
	if err := net.SetPreferableBackend(gocv.NetBackendOpenCV); err != nil {
		net.Close()
		return gocv.Net{}, err
	}
	if err := net.SetPreferableTarget(gocv.NetTargetCPU); err != nil {
		net.Close()
		return gocv.Net{}, err
	}
	return net, nil
}

// loadCNN reads an ONNX file whose checksum the caller has verified against
// the manifest; OpenCV aborts the process on a malformed file.
func loadCNN(path string, outs []string, sizes []int) (*cnn, error) {
	net, err := readONNX(path)
	if err != nil {
		return nil, err
	}
	return &cnn{net: net, outs: outs, size: sizes}, nil
}

// forward runs the net on blob ([1,3,112,112] float32) and copies each
// output into dst (reused between calls). The caller keeps ownership of blob.
func (c *cnn) forward(blob gocv.Mat, dst [][]float32) error {
	if blob.Empty() || blob.Total() != 3*models.FaceInputSize*models.FaceInputSize {
		return fmt.Errorf("cnn: blob has %d values, want %d", blob.Total(), 3*models.FaceInputSize*models.FaceInputSize)
	}
	c.net.SetInput(blob, models.InputName)
	mats := c.net.ForwardLayers(c.outs)
	defer func() {
		for i := range mats {
			mats[i].Close()
		}
	}()
	if len(mats) != len(c.outs) {
		return fmt.Errorf("cnn: %d outputs, want %d", len(mats), len(c.outs))
	}
	for i, m := range mats {
		data, err := m.DataPtrFloat32()
		if err != nil {
			return fmt.Errorf("cnn: output %s: %w", c.outs[i], err)
		}
		if len(data) != c.size[i] {
			return fmt.Errorf("cnn: output %s has %d values, want %d", c.outs[i], len(data), c.size[i])
		}
		dst[i] = append(dst[i][:0], data...)
		for _, v := range dst[i] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("cnn: output %s is not finite", c.outs[i])
			}
		}
	}
	return nil
}

func (c *cnn) Close() error { return c.net.Close() }

// blobFromRGB builds the net input from a 112×112 RGB image in 0..255,
// row-major HWC, normalising exactly as face-api does. The caller owns the
// returned Mat.
func blobFromRGB(rgb []float32) (gocv.Mat, error) {
	const s = models.FaceInputSize
	if len(rgb) != s*s*3 {
		return gocv.Mat{}, fmt.Errorf("blob: want %d values, got %d", s*s*3, len(rgb))
	}
	raw := make([]byte, 4*len(rgb))
	for c := 0; c < 3; c++ {
		for i := 0; i < s*s; i++ {
			v := float32((float64(rgb[i*3+c]) - models.FaceMeanRGB[c]) / 255)
			binary.LittleEndian.PutUint32(raw[4*(c*s*s+i):], math.Float32bits(v))
		}
	}
	return gocv.NewMatWithSizesFromBytes([]int{1, 3, s, s}, gocv.MatTypeCV32F, raw)
}

// VerifyConversion loads a converted ONNX file into OpenCV and compares
// its outputs with the Go reference forward pass of net on rgb (112×112×3,
// 0..255). It returns the largest absolute difference over all outputs.
func VerifyConversion(onnxPath string, net *models.FaceNet, rgb []float32) (float64, error) {
	head := models.OutExpressions
	if net.Kind == models.RoleLandmark {
		head = models.OutLandmarks
	}
	c, err := loadCNN(onnxPath, []string{models.OutFeatures, head}, []int{256, net.Outputs})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	blob, err := blobFromRGB(rgb)
	if err != nil {
		return 0, err
	}
	defer blob.Close()
	got := make([][]float32, 2)
	if err := c.forward(blob, got); err != nil {
		return 0, err
	}
	feat, out, err := net.Forward(rgb)
	if err != nil {
		return 0, err
	}
	diff := 0.0
	for i, want := range [][]float32{feat, out} {
		for j := range want {
			diff = math.Max(diff, math.Abs(float64(got[i][j]-want[j])))
		}
	}
	return diff, nil
}
