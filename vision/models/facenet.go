package models

import (
	"fmt"
	"math"
)

// FaceInputSize is the side of the square RGB input of face-api's
// feature-extractor nets.
const FaceInputSize = 112

// FaceMeanRGB is what face-api subtracts from each channel before dividing
// by 255; the edge worker's blob preparation must do the same.
var FaceMeanRGB = [3]float64{122.782, 117.001, 104.298}

// Output names of the converted nets.
const (
	OutFeatures    = "features"    // [1,256] pooled feature vector (KPCA input)
	OutExpressions = "expressions" // [1,7] softmax over stream.EmotionNames
	OutLandmarks   = "landmarks"   // [1,136] x0,y0,x1,y1… in 0..1 of the input square
	InputName      = "input"       // [1,3,112,112] NCHW, (RGB-mean)/255
)

// FaceNet is one of face-api's nets over the shared FaceFeatureExtractor
// architecture (four dense blocks of depthwise-separable convolutions, 7×7
// average pool) and a fully connected head, with TF-layout weights.
type FaceNet struct {
	Kind    string // "expression" or "landmark68"
	Weights map[string]Tensor
	Outputs int // 7 or 136
}

// NewFaceNet checks that w holds every tensor of the architecture with the
// expected shape.
func NewFaceNet(kind string, w map[string]Tensor) (*FaceNet, error) {
	outs := map[string]int{"expression": 7, "landmark68": 136}[kind]
	if outs == 0 {
		return nil, fmt.Errorf("face net kind %q unknown (expression, landmark68)", kind)
	}
	n := &FaceNet{Kind: kind, Weights: w, Outputs: outs}
	want := map[string][]int{"fc/weights": {256, outs}, "fc/bias": {outs}}
	ch := []int{32, 64, 128, 256}
	in := 3
	for b, c := range ch {
		p := fmt.Sprintf("dense%d/", b)
		if b == 0 {
			want[p+"conv0/filters"] = []int{3, 3, 3, c}
			want[p+"conv0/bias"] = []int{c}
		} else {
			want[p+"conv0/depthwise_filter"] = []int{3, 3, in, 1}
			want[p+"conv0/pointwise_filter"] = []int{1, 1, in, c}
			want[p+"conv0/bias"] = []int{c}
		}
		for i := 1; i <= 3; i++ {
			q := fmt.Sprintf("%sconv%d/", p, i)
			want[q+"depthwise_filter"] = []int{3, 3, c, 1}
			want[q+"pointwise_filter"] = []int{1, 1, c, c}
			want[q+"bias"] = []int{c}
		}
		in = c
	}
	for name, shape := range want {
		t, ok := w[name]
		if !ok {
			return nil, fmt.Errorf("%s net: weight %s missing", kind, name)
		}
		if fmt.Sprint(t.Shape) != fmt.Sprint(shape) {
			return nil, fmt.Errorf("%s net: weight %s has shape %v, want %v", kind, name, t.Shape, shape)
		}
	}
	return n, nil
}

// ONNX returns the net as an ONNX model at opset 11 in NCHW layout, with
// the given version in its metadata.
func (n *FaceNet) ONNX(version string) []byte {
	g := &graph{name: "classpulse_" + n.Kind}
	g.inputs = []valueInfo{{InputName, []int64{1, 3, FaceInputSize, FaceInputSize}}}
	id := 0
	fresh := func(s string) string { id++; return fmt.Sprintf("%s_%d", s, id) }
	addInit := func(name string, dims []int64, data []float32) string {
		g.inits = append(g.inits, initializer{name, dims, data})
		return name
	}
	// conv adds a Conv node; TF "same" padding puts the odd pixel at the end
	// (bottom/right), which ONNX pads express exactly.
	conv := func(x, w, b string, k, stride, groups, inSize int) string {
		outSize := (inSize + stride - 1) / stride
		total := max((outSize-1)*stride+k-inSize, 0)
		lo, hi := int64(total/2), int64(total-total/2)
		out := fresh("conv")
		ins := []string{x, w}
		if b != "" {
			ins = append(ins, b)
		}
		g.nodes = append(g.nodes, node{op: "Conv", name: out, inputs: ins, outputs: []string{out}, attrs: []attr{
			intsAttr("kernel_shape", int64(k), int64(k)),
			intsAttr("strides", int64(stride), int64(stride)),
			intsAttr("pads", lo, lo, hi, hi),
			intsAttr("dilations", 1, 1),
			intAttr("group", int64(groups)),
		}})
		return out
	}
	op := func(kind string, ins ...string) string {
		out := fresh(kind)
		g.nodes = append(g.nodes, node{op: kind, name: out, inputs: ins, outputs: []string{out}})
		return out
	}
	sep := func(x, p string, stride, inSize int) string {
		dw := n.Weights[p+"depthwise_filter"]
		pw := n.Weights[p+"pointwise_filter"]
		c, cout := dw.Shape[2], pw.Shape[3]
		dwName := addInit(p+"depthwise_filter", []int64{int64(c), 1, 3, 3}, hwioToOIHW(dw, true))
		pwName := addInit(p+"pointwise_filter", []int64{int64(cout), int64(c), 1, 1}, hwioToOIHW(pw, false))
		bName := addInit(p+"bias", []int64{int64(cout)}, n.Weights[p+"bias"].Data)
		y := conv(x, dwName, "", 3, stride, c, inSize)
		return conv(y, pwName, bName, 1, 1, 1, (inSize+stride-1)/stride)
	}
	x, size := InputName, FaceInputSize
	for b := 0; b < 4; b++ {
		p := fmt.Sprintf("dense%d/", b)
		var out1 string
		if b == 0 {
			f := n.Weights[p+"conv0/filters"]
			w := addInit(p+"conv0/filters", []int64{int64(f.Shape[3]), 3, 3, 3}, hwioToOIHW(f, false))
			bias := addInit(p+"conv0/bias", []int64{int64(f.Shape[3])}, n.Weights[p+"conv0/bias"].Data)
			out1 = op("Relu", conv(x, w, bias, 3, 2, 1, size))
		} else {
			out1 = op("Relu", sep(x, p+"conv0/", 2, size))
		}
		size = (size + 1) / 2
		out2 := sep(out1, p+"conv1/", 1, size)
		in3 := op("Relu", op("Add", out1, out2))
		out3 := sep(in3, p+"conv2/", 1, size)
		in4 := op("Relu", op("Add", out1, op("Add", out2, out3)))
		out4 := sep(in4, p+"conv3/", 1, size)
		x = op("Relu", op("Add", out1, op("Add", out2, op("Add", out3, out4))))
	}
	pool := fresh("pool")
	g.nodes = append(g.nodes, node{op: "AveragePool", name: pool, inputs: []string{x}, outputs: []string{pool}, attrs: []attr{
		intsAttr("kernel_shape", 7, 7), intsAttr("strides", 2, 2), intsAttr("pads", 0, 0, 0, 0),
	}})
	g.nodes = append(g.nodes, node{op: "Flatten", name: OutFeatures, inputs: []string{pool}, outputs: []string{OutFeatures}, attrs: []attr{intAttr("axis", 1)}})
	// Stored as [out,in] with transB=1, the form OpenCV's Gemm import
	// handles (it rejects transB=0 with a bias).
	fcw := addInit("fc/weights", []int64{int64(n.Outputs), 256}, transpose(n.Weights["fc/weights"].Data, 256, n.Outputs))
	fcb := addInit("fc/bias", []int64{int64(n.Outputs)}, n.Weights["fc/bias"].Data)
	outs := []valueInfo{{OutFeatures, []int64{1, 256}}}
	if n.Kind == "expression" {
		logits := "logits"
		g.nodes = append(g.nodes, node{op: "Gemm", name: logits, inputs: []string{OutFeatures, fcw, fcb}, outputs: []string{logits},
			attrs: []attr{floatAttr("alpha", 1), floatAttr("beta", 1), intAttr("transA", 0), intAttr("transB", 1)}})
		g.nodes = append(g.nodes, node{op: "Softmax", name: OutExpressions, inputs: []string{logits}, outputs: []string{OutExpressions}, attrs: []attr{intAttr("axis", 1)}})
		outs = append(outs, valueInfo{OutExpressions, []int64{1, 7}})
	} else {
		g.nodes = append(g.nodes, node{op: "Gemm", name: OutLandmarks, inputs: []string{OutFeatures, fcw, fcb}, outputs: []string{OutLandmarks},
			attrs: []attr{floatAttr("alpha", 1), floatAttr("beta", 1), intAttr("transA", 0), intAttr("transB", 1)}})
		outs = append(outs, valueInfo{OutLandmarks, []int64{1, 136}})
	}
	g.outputs = outs
	return g.encodeModel(version, 1, [][2]string{{"classpulse_model_version", version}, {"source", "@vladmandic/face-api " + n.Kind}})
}

// transpose returns the rows×cols row-major matrix m as cols×rows.
func transpose(m []float32, rows, cols int) []float32 {
	out := make([]float32, len(m))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			out[c*rows+r] = m[r*cols+c]
		}
	}
	return out
}

// hwioToOIHW reorders a TF filter [kh,kw,in,out] to ONNX [out,in,kh,kw]; a
// depthwise filter [kh,kw,C,1] becomes [C,1,kh,kw].
func hwioToOIHW(t Tensor, depthwise bool) []float32 {
	kh, kw, ci, co := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	out := make([]float32, len(t.Data))
	for y := 0; y < kh; y++ {
		for x := 0; x < kw; x++ {
			for i := 0; i < ci; i++ {
				for o := 0; o < co; o++ {
					v := t.Data[((y*kw+x)*ci+i)*co+o]
					if depthwise { // o == 0, channel i is the output channel
						out[(i*kh+y)*kw+x] = v
					} else {
						out[((o*ci+i)*kh+y)*kw+x] = v
					}
				}
			}
		}
	}
	return out
}

// Forward is the reference forward pass, written from face-api's
// TensorFlow.js code in TF layout (NHWC, HWIO filters, TF "same" padding)
// and independent of the ONNX graph, so that comparing the two checks the
// conversion. rgb is 112×112×3 float RGB in 0..255, row-major. It returns
// the 256 features and the head output (softmax applied for expressions).
func (n *FaceNet) Forward(rgb []float32) (features, out []float32, err error) {
	const s = FaceInputSize
	if len(rgb) != s*s*3 {
		return nil, nil, fmt.Errorf("reference forward: want %d values, got %d", s*s*3, len(rgb))
	}
	x := hwc{h: s, w: s, c: 3, d: make([]float32, len(rgb))}
	for i, v := range rgb {
		x.d[i] = float32((float64(v) - FaceMeanRGB[i%3]) / 255)
	}
	for b := 0; b < 4; b++ {
		p := fmt.Sprintf("dense%d/", b)
		var out1 hwc
		if b == 0 {
			out1 = x.conv(n.Weights[p+"conv0/filters"], 2).addBias(n.Weights[p+"conv0/bias"]).relu()
		} else {
			out1 = n.sep(x, p+"conv0/", 2).relu()
		}
		out2 := n.sep(out1, p+"conv1/", 1)
		in3 := out1.add(out2).relu()
		out3 := n.sep(in3, p+"conv2/", 1)
		in4 := out1.add(out2.add(out3)).relu()
		out4 := n.sep(in4, p+"conv3/", 1)
		x = out1.add(out2.add(out3.add(out4))).relu()
	}
	// avgPool 7×7 stride 2 'valid' over a 7×7 map is the mean per channel.
	features = make([]float32, x.c)
	for c := 0; c < x.c; c++ {
		var sum float64
		for i := 0; i < x.h*x.w; i++ {
			sum += float64(x.d[i*x.c+c])
		}
		features[c] = float32(sum / float64(x.h*x.w))
	}
	w, bias := n.Weights["fc/weights"], n.Weights["fc/bias"]
	out = make([]float32, n.Outputs)
	for o := range out {
		acc := float64(bias.Data[o])
		for i, f := range features {
			acc += float64(f) * float64(w.Data[i*n.Outputs+o])
		}
		out[o] = float32(acc)
	}
	if n.Kind == "expression" {
		softmax(out)
	}
	return features, out, nil
}

func (n *FaceNet) sep(x hwc, p string, stride int) hwc {
	return x.depthwise(n.Weights[p+"depthwise_filter"], stride).conv(n.Weights[p+"pointwise_filter"], 1).addBias(n.Weights[p+"bias"])
}

func softmax(v []float32) {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	var sum float64
	for i, x := range v {
		e := math.Exp(float64(x - m))
		v[i] = float32(e)
		sum += e
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / sum)
	}
}

// hwc is a feature map in TF layout.
type hwc struct {
	h, w, c int
	d       []float32
}

// samePad returns output size and leading pad of TF "same" padding.
func samePad(in, k, stride int) (out, lo int) {
	out = (in + stride - 1) / stride
	return out, max((out-1)*stride+k-in, 0) / 2
}

func (x hwc) conv(f Tensor, stride int) hwc {
	kh, kw, ci, co := f.Shape[0], f.Shape[1], f.Shape[2], f.Shape[3]
	oh, pt := samePad(x.h, kh, stride)
	ow, pl := samePad(x.w, kw, stride)
	y := hwc{h: oh, w: ow, c: co, d: make([]float32, oh*ow*co)}
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			acc := y.d[(oy*ow+ox)*co : (oy*ow+ox+1)*co]
			for ky := 0; ky < kh; ky++ {
				iy := oy*stride + ky - pt
				if iy < 0 || iy >= x.h {
					continue
				}
				for kx := 0; kx < kw; kx++ {
					ix := ox*stride + kx - pl
					if ix < 0 || ix >= x.w {
						continue
					}
					in := x.d[(iy*x.w+ix)*ci : (iy*x.w+ix+1)*ci]
					fw := f.Data[(ky*kw+kx)*ci*co:]
					for i, v := range in {
						row := fw[i*co : (i+1)*co]
						for o := range acc {
							acc[o] += v * row[o]
						}
					}
				}
			}
		}
	}
	return y
}

func (x hwc) depthwise(f Tensor, stride int) hwc {
	kh, kw := f.Shape[0], f.Shape[1]
	oh, pt := samePad(x.h, kh, stride)
	ow, pl := samePad(x.w, kw, stride)
	y := hwc{h: oh, w: ow, c: x.c, d: make([]float32, oh*ow*x.c)}
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			acc := y.d[(oy*ow+ox)*x.c : (oy*ow+ox+1)*x.c]
			for ky := 0; ky < kh; ky++ {
				iy := oy*stride + ky - pt
				if iy < 0 || iy >= x.h {
					continue
				}
				for kx := 0; kx < kw; kx++ {
					ix := ox*stride + kx - pl
					if ix < 0 || ix >= x.w {
						continue
					}
					in := x.d[(iy*x.w+ix)*x.c:]
					fw := f.Data[(ky*kw+kx)*x.c:]
					for c := range acc {
						acc[c] += in[c] * fw[c]
					}
				}
			}
		}
	}
	return y
}

func (x hwc) addBias(b Tensor) hwc {
	for i := range x.d {
		x.d[i] += b.Data[i%x.c]
	}
	return x
}

func (x hwc) relu() hwc {
	y := hwc{h: x.h, w: x.w, c: x.c, d: make([]float32, len(x.d))}
	for i, v := range x.d {
		y.d[i] = max(v, 0)
	}
	return y
}

func (x hwc) add(o hwc) hwc {
	y := hwc{h: x.h, w: x.w, c: x.c, d: make([]float32, len(x.d))}
	for i := range x.d {
		y.d[i] = x.d[i] + o.d[i]
	}
	return y
}
