package vision

import (
	"math"

	"github.com/classpulse/classpulse/stream"
)

// The heads turn landmarks, the expression net's output, the KPCA novelty
// and the mask score into the per-face signals. Every formula is a
// documented heuristic (docs/edge.md); none was trained on classpulse data.

// eyeAspect is the eye aspect ratio (Soukupová & Čech 2016) of the six
// landmarks of one eye starting at i: vertical lid distances over width.
func eyeAspect(lm *[68][2]float64, i int) float64 {
	d := func(a, b int) float64 { return math.Hypot(lm[a][0]-lm[b][0], lm[a][1]-lm[b][1]) }
	w := d(i, i+3)
	if w < 1e-6 {
		return 0
	}
	return (d(i+1, i+5) + d(i+2, i+4)) / (2 * w)
}

// eyesOpen maps the mean eye aspect ratio to 0 (closed, EAR ≤ 0.15) … 1
// (open, EAR ≥ 0.25).
func eyesOpen(lm *[68][2]float64) float64 {
	ear := (eyeAspect(lm, 36) + eyeAspect(lm, 42)) / 2
	return clamp01((ear - 0.15) / 0.10)
}

// gazeOnScreen is 1 while the head points at the screen (|yaw| ≤ 15°,
// |pitch| ≤ 12°), falling linearly to 0 at |yaw| 35° or |pitch| 30°. The
// camera sits at the screen's edge, so head pose stands in for gaze.
func gazeOnScreen(yaw, pitch float64) float64 {
	y := clamp01((math.Abs(yaw) - 15) / 20)
	p := clamp01((math.Abs(pitch) - 12) / 18)
	return 1 - math.Max(y, p)
}

// browLowering approximates facial action unit 4 (brow lowerer, the
// marker of confusion and frustration in D'Mello & Graesser's studies): the
// brow-to-upper-lid distance over the inter-ocular distance, 0 at a relaxed
// 0.32 or more, 1 at 0.20 or less.
func browLowering(lm *[68][2]float64) float64 {
	iod := math.Hypot(lm[45][0]-lm[36][0], lm[45][1]-lm[36][1])
	if iod < 1e-6 {
		return 0
	}
	brow := (lm[19][1] + lm[20][1] + lm[23][1] + lm[24][1]) / 4
	lid := (lm[37][1] + lm[38][1] + lm[43][1] + lm[44][1]) / 4
	return clamp01((0.32 - (lid-brow)/iod) / 0.12)
}

// attentionOf is the per-frame attention of a present face: gaze on screen
// weighs 0.6, open eyes 0.4. A frame without a face has attention 0.
func attentionOf(gaze, eyes float64) float64 { return clamp01(0.6*gaze + 0.4*eyes) }

// learningOf derives the four learning emotions from the frame's signals.
// emo is nil for a masked face (the mouth is hidden, so only the eye region
// speaks: brow lowering, eye openness and attention).
//
//	confused   = 0.5·AU4 + 0.3·surprised + 0.2·fearful    (masked: 0.8·AU4)
//	frustrated = 0.4·AU4 + 0.4·angry + 0.2·disgusted      (masked: 0.5·AU4·(1-eyes_open/2))
//	bored      = 0.5·(1-attention) + 0.3·(1-eyes_open) + 0.2·sad
//	engaged    = attention · (1 - max(confused, frustrated, bored))
func learningOf(emo *stream.Emotions, au4, attention, eyes float64) stream.Learning {
	var l stream.Learning
	sad := 0.0
	if emo != nil {
		l.Confused = 0.5*au4 + 0.3*emo.Surprised + 0.2*emo.Fearful
		l.Frustrated = 0.4*au4 + 0.4*emo.Angry + 0.2*emo.Disgusted
		sad = emo.Sad
	} else {
		l.Confused = 0.8 * au4
		l.Frustrated = 0.5 * au4 * (1 - eyes/2)
	}
	l.Bored = 0.5*(1-attention) + 0.3*(1-eyes) + 0.2*sad
	l.Confused, l.Frustrated, l.Bored = clamp01(l.Confused), clamp01(l.Frustrated), clamp01(l.Bored)
	l.Engaged = clamp01(attention * (1 - math.Max(l.Confused, math.Max(l.Frustrated, l.Bored))))
	return l
}

func clamp01(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return math.Min(1, math.Max(0, v))
}

// maskScore compares the chroma of the lower face (mouth, chin, lower
// cheeks beside the mouth) with the upper face (forehead band and nose bridge, which a mask
// leaves bare) in YCrCb on a 112×112 BGR crop: the share of lower-face
// pixels whose chroma is unlike the person's own upper-face skin. Comparing
// with the same face makes it independent of skin tone; a mask in a skin
// colour is its blind spot.
func maskScore(bgr []uint8, size int, lm *[68][2]float64) float64 {
	iod := math.Hypot(lm[45][0]-lm[36][0], lm[45][1]-lm[36][1])
	type rect struct{ x0, y0, x1, y1 float64 }
	upper := []rect{
		{lm[19][0], lm[19][1] - 0.30*iod, lm[24][0], lm[19][1] - 0.08*iod},
		{lm[39][0], lm[27][1], lm[42][0], lm[28][1]},
	}
	// Chin below the lip and both cheeks beside the mouth: all under a
	// mask, and none of them lips or nostrils, whose colour differs from
	// skin anyway.
	lower := []rect{
		{lm[58][0], lm[57][1] + 0.06*iod, lm[56][0], lm[8][1] - 0.06*iod},
		{lm[3][0] + 0.12*iod, lm[31][1], lm[48][0] - 0.05*iod, lm[48][1]},
		{lm[54][0] + 0.05*iod, lm[35][1], lm[13][0] - 0.12*iod, lm[54][1]},
	}
	chroma := func(x, y int) (float64, float64) {
		i := (y*size + x) * 3
		b, g, r := float64(bgr[i]), float64(bgr[i+1]), float64(bgr[i+2])
		yy := 0.299*r + 0.587*g + 0.114*b
		return (r-yy)*0.713 + 128, (b-yy)*0.564 + 128
	}
	each := func(rs []rect, f func(cr, cb float64)) int {
		n := 0
		for _, r := range rs {
			for y := max(int(r.y0), 0); y < min(int(r.y1), size); y++ {
				for x := max(int(r.x0), 0); x < min(int(r.x1), size); x++ {
					f(chroma(x, y))
					n++
				}
			}
		}
		return n
	}
	var sr, sb, sr2, sb2 float64
	n := each(upper, func(cr, cb float64) { sr += cr; sb += cb; sr2 += cr * cr; sb2 += cb * cb })
	if n < 10 {
		return 0
	}
	mr, mb := sr/float64(n), sb/float64(n)
	sd := math.Sqrt(math.Max(sr2/float64(n)-mr*mr, 0) + math.Max(sb2/float64(n)-mb*mb, 0))
	tol := math.Max(10, 3*sd)
	unlike := 0
	m := each(lower, func(cr, cb float64) {
		if math.Hypot(cr-mr, cb-mb) > tol {
			unlike++
		}
	})
	if m < 10 {
		return 0
	}
	return float64(unlike) / float64(m)
}
