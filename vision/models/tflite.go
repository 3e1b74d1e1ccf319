package models

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// A reader for TensorFlow Lite model files (a FlatBuffer, schema
// tensorflow/lite/schema/schema.fbs): the first subgraph's tensors with
// their constant data, and its operators with the options the MTCNN nets
// use. Every offset is checked against the file before it is followed, so a
// truncated or corrupt file is an ErrTFLite, never a panic.

// ErrTFLite is wrapped by every error about a malformed TFLite file.
var ErrTFLite = errors.New("tflite model")

// TFLite builtin operator codes (schema.fbs BuiltinOperator) this package
// knows by name.
const (
	TFLAdd           = 0
	TFLAveragePool2D = 1
	TFLConcat        = 2
	TFLConv2D        = 3
	TFLDepthwiseConv = 4
	TFLDequantize    = 6
	TFLFullyConn     = 9
	TFLLogistic      = 14
	TFLMaxPool2D     = 17
	TFLMul           = 18
	TFLRelu          = 19
	TFLReshape       = 22
	TFLSoftmax       = 25
	TFLTranspose     = 39
	TFLSub           = 41
	TFLDiv           = 42
	TFLSqueeze       = 43
	TFLExp           = 47
	TFLPRelu         = 54
	TFLNeg           = 59
	TFLSum           = 74
	TFLReduceMax     = 82
)

var tflOpNames = map[int]string{
	TFLAdd: "ADD", TFLAveragePool2D: "AVERAGE_POOL_2D", TFLConcat: "CONCATENATION", TFLConv2D: "CONV_2D",
	TFLDepthwiseConv: "DEPTHWISE_CONV_2D", TFLDequantize: "DEQUANTIZE", TFLFullyConn: "FULLY_CONNECTED",
	TFLLogistic: "LOGISTIC", TFLMaxPool2D: "MAX_POOL_2D", TFLMul: "MUL", TFLRelu: "RELU", TFLReshape: "RESHAPE",
	TFLSoftmax: "SOFTMAX", TFLTranspose: "TRANSPOSE", TFLSqueeze: "SQUEEZE", TFLPRelu: "PRELU",
	TFLSub: "SUB", TFLDiv: "DIV", TFLExp: "EXP", TFLNeg: "NEG", TFLSum: "SUM", TFLReduceMax: "REDUCE_MAX",
}

// TFLOpName is the schema name of a builtin operator code.
func TFLOpName(code int) string {
	if n, ok := tflOpNames[code]; ok {
		return n
	}
	return fmt.Sprintf("builtin#%d", code)
}

// TFLite tensor element types (schema.fbs TensorType).
const (
	TFLFloat32 = 0
	TFLFloat16 = 1
	TFLInt32   = 2
	TFLUint8   = 3
	TFLInt64   = 4
	TFLInt8    = 9
)

// Fused activations (schema.fbs ActivationFunctionType).
const (
	ActNone  = 0
	ActRelu  = 1
	ActRelu1 = 2
	ActRelu6 = 3
	ActTanh  = 4
)

// TFLTensor is one tensor of a subgraph. Data holds its constant value
// (dequantised to float32 for int8/uint8/float16 weights), nil for an
// activation; Ints holds an int32/int64 constant (shapes, permutations).
type TFLTensor struct {
	Name  string
	Shape []int
	Type  int
	Data  []float32
	Ints  []int64
	// Scale and ZeroPoint are the quantisation parameters, per tensor or
	// per channel along QuantDim; empty when not quantised.
	Scale     []float32
	ZeroPoint []int64
	QuantDim  int
}

// Const reports whether the tensor has constant data.
func (t *TFLTensor) Const() bool { return t.Data != nil || t.Ints != nil }

// Elements is the product of the tensor's dimensions.
func (t *TFLTensor) Elements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// TFLOp is one operator with the options of its kind (zero for options an
// op does not have).
type TFLOp struct {
	Code    int
	Inputs  []int // tensor indices; -1 is an omitted optional input
	Outputs []int
	// Conv, depthwise conv, pools.
	Padding          string // "SAME" or "VALID"
	StrideW, StrideH int
	DilationW        int
	DilationH        int
	FilterW          int // pools
	FilterH          int
	DepthMultiplier  int
	Activation       int
	// Softmax.
	Beta float32
	// Reshape (when the shape is not an input tensor).
	NewShape []int
	// FullyConnected.
	KeepNumDims bool
	// Squeeze.
	SqueezeDims []int
	// Concatenation.
	Axis int
	// Reducers (SUM, REDUCE_MAX; the axes are an input tensor).
	KeepDims bool
}

// TFLModel is the first subgraph of a TFLite file.
type TFLModel struct {
	Version     uint32
	Description string
	Tensors     []TFLTensor
	Inputs      []int
	Outputs     []int
	Ops         []TFLOp
}

// TensorByName returns the index of the tensor called name, or -1.
func (m *TFLModel) TensorByName(name string) int {
	for i := range m.Tensors {
		if m.Tensors[i].Name == name {
			return i
		}
	}
	return -1
}

// Limits on what a model may declare: far above the MTCNN nets (the O-Net
// has ~390 k weights), far below what would exhaust memory.
const (
	tflMaxElements = 1 << 26
	tflMaxTensors  = 1 << 14
	tflMaxRank     = 8
)

// fb is a FlatBuffer with checked access.
type fb []byte

func (b fb) u8(p int) (uint8, error) {
	if p < 0 || p+1 > len(b) {
		return 0, fmt.Errorf("%w: offset %d outside the file (%d bytes)", ErrTFLite, p, len(b))
	}
	return b[p], nil
}

func (b fb) u16(p int) (uint16, error) {
	if p < 0 || p+2 > len(b) {
		return 0, fmt.Errorf("%w: offset %d outside the file (%d bytes)", ErrTFLite, p, len(b))
	}
	return binary.LittleEndian.Uint16(b[p:]), nil
}

func (b fb) u32(p int) (uint32, error) {
	if p < 0 || p+4 > len(b) {
		return 0, fmt.Errorf("%w: offset %d outside the file (%d bytes)", ErrTFLite, p, len(b))
	}
	return binary.LittleEndian.Uint32(b[p:]), nil
}

func (b fb) u64(p int) (uint64, error) {
	if p < 0 || p+8 > len(b) {
		return 0, fmt.Errorf("%w: offset %d outside the file (%d bytes)", ErrTFLite, p, len(b))
	}
	return binary.LittleEndian.Uint64(b[p:]), nil
}

// table is a FlatBuffer table: its position and its vtable's.
type table struct {
	b      fb
	pos    int
	vt     int
	vtSize int
}

// tableAt follows the uoffset at p to a table.
func (b fb) tableAt(p int) (table, error) {
	off, err := b.u32(p)
	if err != nil {
		return table{}, err
	}
	return b.tableAtAbs(p + int(off))
}

func (b fb) tableAtAbs(pos int) (table, error) {
	so, err := b.u32(pos)
	if err != nil {
		return table{}, err
	}
	vt := pos - int(int32(so))
	size, err := b.u16(vt)
	if err != nil {
		return table{}, err
	}
	if size < 4 || size%2 != 0 || vt+int(size) > len(b) {
		return table{}, fmt.Errorf("%w: bad vtable at %d", ErrTFLite, vt)
	}
	return table{b: b, pos: pos, vt: vt, vtSize: int(size)}, nil
}

// field is the absolute position of field i, or 0 when absent.
func (t table) field(i int) (int, error) {
	o := 4 + 2*i
	if o+2 > t.vtSize {
		return 0, nil
	}
	off, err := t.b.u16(t.vt + o)
	if err != nil || off == 0 {
		return 0, err
	}
	return t.pos + int(off), nil
}

func (t table) uint8(i int, def uint8) (uint8, error) {
	p, err := t.field(i)
	if err != nil || p == 0 {
		return def, err
	}
	return t.b.u8(p)
}

func (t table) int32(i int, def int32) (int32, error) {
	p, err := t.field(i)
	if err != nil || p == 0 {
		return def, err
	}
	v, err := t.b.u32(p)
	return int32(v), err
}

func (t table) uint64(i int) (uint64, error) {
	p, err := t.field(i)
	if err != nil || p == 0 {
		return 0, err
	}
	return t.b.u64(p)
}

func (t table) float32(i int, def float32) (float32, error) {
	p, err := t.field(i)
	if err != nil || p == 0 {
		return def, err
	}
	v, err := t.b.u32(p)
	return math.Float32frombits(v), err
}

// vector returns the start and length of the vector in field i (elem bytes
// each), length 0 when absent.
func (t table) vector(i, elem int) (start, n int, err error) {
	p, err := t.field(i)
	if err != nil || p == 0 {
		return 0, 0, err
	}
	off, err := t.b.u32(p)
	if err != nil {
		return 0, 0, err
	}
	v := p + int(off)
	l, err := t.b.u32(v)
	if err != nil {
		return 0, 0, err
	}
	if uint64(l)*uint64(elem) > uint64(len(t.b)) || v+4+int(l)*elem > len(t.b) {
		return 0, 0, fmt.Errorf("%w: vector of %d×%d bytes at %d overruns the file", ErrTFLite, l, elem, v)
	}
	return v + 4, int(l), nil
}

func (t table) str(i int) (string, error) {
	s, n, err := t.vector(i, 1)
	if err != nil {
		return "", err
	}
	return string(t.b[s : s+n]), nil
}

func (t table) ints32(i int) ([]int, error) {
	s, n, err := t.vector(i, 4)
	if err != nil || n == 0 {
		return nil, err
	}
	out := make([]int, n)
	for k := range out {
		out[k] = int(int32(binary.LittleEndian.Uint32(t.b[s+4*k:])))
	}
	return out, nil
}

func (t table) tables(i int) ([]table, error) {
	s, n, err := t.vector(i, 4)
	if err != nil {
		return nil, err
	}
	out := make([]table, n)
	for k := range out {
		if out[k], err = t.b.tableAt(s + 4*k); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ParseTFLite decodes a TFLite model file: its first subgraph, every
// tensor with constant data dequantised to float32, and every operator with
// its options. It checks that the graph is consistent (tensor indices in
// range, constant sizes matching shapes) but not that its ops are
// supported; see MTCNNNet for that.
func ParseTFLite(data []byte) (*TFLModel, error) {
	b := fb(data)
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrTFLite, len(b))
	}
	if string(b[4:8]) != "TFL3" {
		return nil, fmt.Errorf("%w: file identifier %q, want \"TFL3\"", ErrTFLite, b[4:8])
	}
	root, err := b.tableAt(0)
	if err != nil {
		return nil, err
	}
	m := &TFLModel{}
	v, err := root.int32(0, 0)
	if err != nil {
		return nil, err
	}
	m.Version = uint32(v)
	if m.Description, err = root.str(3); err != nil {
		return nil, err
	}
	codes, err := root.tables(1)
	if err != nil {
		return nil, err
	}
	opCodes := make([]int, len(codes))
	for i, c := range codes {
		dep, err := c.uint8(0, 0)
		if err != nil {
			return nil, err
		}
		full, err := c.int32(3, 0)
		if err != nil {
			return nil, err
		}
		// Files from before the 127-operator extension carry only the
		// deprecated byte; newer ones both, the larger being the real code.
		opCodes[i] = max(int(dep), int(full))
	}
	buffers, err := root.tables(4)
	if err != nil {
		return nil, err
	}
	subgraphs, err := root.tables(2)
	if err != nil {
		return nil, err
	}
	if len(subgraphs) == 0 {
		return nil, fmt.Errorf("%w: no subgraph", ErrTFLite)
	}
	sg := subgraphs[0]
	tensors, err := sg.tables(0)
	if err != nil {
		return nil, err
	}
	if len(tensors) > tflMaxTensors {
		return nil, fmt.Errorf("%w: %d tensors", ErrTFLite, len(tensors))
	}
	m.Tensors = make([]TFLTensor, len(tensors))
	for i, tt := range tensors {
		if err := parseTensor(b, tt, buffers, &m.Tensors[i]); err != nil {
			return nil, fmt.Errorf("tensor %d: %w", i, err)
		}
	}
	if m.Inputs, err = sg.ints32(1); err != nil {
		return nil, err
	}
	if m.Outputs, err = sg.ints32(2); err != nil {
		return nil, err
	}
	ops, err := sg.tables(3)
	if err != nil {
		return nil, err
	}
	m.Ops = make([]TFLOp, len(ops))
	for i, ot := range ops {
		if err := parseOp(ot, opCodes, &m.Ops[i]); err != nil {
			return nil, fmt.Errorf("operator %d: %w", i, err)
		}
	}
	return m, m.check()
}

func parseTensor(b fb, tt table, buffers []table, t *TFLTensor) error {
	var err error
	if t.Shape, err = tt.ints32(0); err != nil {
		return err
	}
	if len(t.Shape) > tflMaxRank {
		return fmt.Errorf("%w: rank %d", ErrTFLite, len(t.Shape))
	}
	n := 1
	for _, d := range t.Shape {
		if d < 0 || d > tflMaxElements {
			return fmt.Errorf("%w: dimension %d", ErrTFLite, d)
		}
		n *= d
		if n > tflMaxElements {
			return fmt.Errorf("%w: shape %v too large", ErrTFLite, t.Shape)
		}
	}
	typ, err := tt.uint8(1, 0)
	if err != nil {
		return err
	}
	t.Type = int(typ)
	if t.Name, err = tt.str(3); err != nil {
		return err
	}
	// Quantisation: scale (field 2) and zero point (field 3) vectors,
	// quantized_dimension (field 6).
	if p, err := tt.field(4); err != nil {
		return err
	} else if p != 0 {
		q, err := b.tableAt(p)
		if err != nil {
			return err
		}
		s, ns, err := q.vector(2, 4)
		if err != nil {
			return err
		}
		for k := 0; k < ns; k++ {
			t.Scale = append(t.Scale, math.Float32frombits(binary.LittleEndian.Uint32(b[s+4*k:])))
		}
		z, nz, err := q.vector(3, 8)
		if err != nil {
			return err
		}
		for k := 0; k < nz; k++ {
			t.ZeroPoint = append(t.ZeroPoint, int64(binary.LittleEndian.Uint64(b[z+8*k:])))
		}
		qd, err := q.int32(6, 0)
		if err != nil {
			return err
		}
		t.QuantDim = int(qd)
	}
	bi, err := tt.int32(2, 0)
	if err != nil {
		return err
	}
	if bi < 0 || int(bi) >= len(buffers) {
		if bi == 0 && len(buffers) == 0 {
			return nil
		}
		return fmt.Errorf("%w: buffer %d of %d", ErrTFLite, bi, len(buffers))
	}
	raw, err := bufferData(b, buffers[bi])
	if err != nil || len(raw) == 0 {
		return err
	}
	return t.decode(raw, n)
}

// bufferData is a Buffer's bytes: its data vector, or for files written
// with external buffers, the (offset, size) range of the file.
func bufferData(b fb, bt table) ([]byte, error) {
	s, n, err := bt.vector(0, 1)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		return b[s : s+n], nil
	}
	off, err := bt.uint64(1)
	if err != nil {
		return nil, err
	}
	size, err := bt.uint64(2)
	if err != nil || size == 0 {
		return nil, err
	}
	if off > uint64(len(b)) || size > uint64(len(b))-off {
		return nil, fmt.Errorf("%w: buffer at %d+%d outside the file", ErrTFLite, off, size)
	}
	return b[off : off+size], nil
}

// decode turns the raw buffer of an n-element tensor into Data or Ints.
func (t *TFLTensor) decode(raw []byte, n int) error {
	width := map[int]int{TFLFloat32: 4, TFLFloat16: 2, TFLInt32: 4, TFLUint8: 1, TFLInt64: 8, TFLInt8: 1}[t.Type]
	if width == 0 {
		return fmt.Errorf("%w: constant of unsupported type %d", ErrTFLite, t.Type)
	}
	if len(raw) != n*width {
		return fmt.Errorf("%w: %q holds %d bytes, shape %v needs %d", ErrTFLite, t.Name, len(raw), t.Shape, n*width)
	}
	switch t.Type {
	case TFLFloat32:
		t.Data = make([]float32, n)
		for i := range t.Data {
			t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case TFLFloat16:
		t.Data = make([]float32, n)
		for i := range t.Data {
			t.Data[i] = halfToFloat(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case TFLInt32:
		t.Ints = make([]int64, n)
		for i := range t.Ints {
			t.Ints[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		}
	case TFLInt64:
		t.Ints = make([]int64, n)
		for i := range t.Ints {
			t.Ints[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	case TFLUint8, TFLInt8:
		return t.dequantise(raw, n)
	}
	return nil
}

// dequantise maps 8-bit weights to float32: (q - zero_point) · scale, per
// tensor or per channel along QuantDim.
func (t *TFLTensor) dequantise(raw []byte, n int) error {
	ns := len(t.Scale)
	if ns == 0 {
		return fmt.Errorf("%w: 8-bit constant %q without quantisation scale", ErrTFLite, t.Name)
	}
	if len(t.ZeroPoint) != 0 && len(t.ZeroPoint) != ns {
		return fmt.Errorf("%w: %q has %d scales and %d zero points", ErrTFLite, t.Name, ns, len(t.ZeroPoint))
	}
	inner := 1 // elements per step along QuantDim
	if ns > 1 {
		if t.QuantDim < 0 || t.QuantDim >= len(t.Shape) || t.Shape[t.QuantDim] != ns {
			return fmt.Errorf("%w: %q has %d scales for shape %v along axis %d", ErrTFLite, t.Name, ns, t.Shape, t.QuantDim)
		}
		for _, d := range t.Shape[t.QuantDim+1:] {
			inner *= d
		}
	}
	t.Data = make([]float32, n)
	for i := range t.Data {
		c := 0
		if ns > 1 {
			c = (i / inner) % ns
		}
		q := int64(raw[i])
		if t.Type == TFLInt8 {
			q = int64(int8(raw[i]))
		}
		if len(t.ZeroPoint) > 0 {
			q -= t.ZeroPoint[c]
		}
		t.Data[i] = float32(q) * t.Scale[c]
	}
	return nil
}

// halfToFloat converts an IEEE 754 binary16 value.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		v := float32(frac) / 1024 * float32(math.Pow(2, -14))
		if sign != 0 {
			v = -v
		}
		return v
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

func parseOp(ot table, opCodes []int, op *TFLOp) error {
	idx, err := ot.int32(0, 0)
	if err != nil {
		return err
	}
	if idx < 0 || int(idx) >= len(opCodes) {
		return fmt.Errorf("%w: opcode index %d of %d", ErrTFLite, idx, len(opCodes))
	}
	op.Code = opCodes[idx]
	if op.Inputs, err = ot.ints32(1); err != nil {
		return err
	}
	if op.Outputs, err = ot.ints32(2); err != nil {
		return err
	}
	p, err := ot.field(4)
	if err != nil || p == 0 {
		return err
	}
	o, err := ot.b.tableAt(p)
	if err != nil {
		return err
	}
	geti := func(i int, def int32) int {
		if err != nil {
			return 0
		}
		var v int32
		v, err = o.int32(i, def)
		return int(v)
	}
	getb := func(i int) int {
		if err != nil {
			return 0
		}
		var v uint8
		v, err = o.uint8(i, 0)
		return int(v)
	}
	pad := func(i int) string {
		if getb(i) == 1 {
			return "VALID"
		}
		return "SAME"
	}
	switch op.Code {
	case TFLConv2D:
		op.Padding, op.StrideW, op.StrideH, op.Activation = pad(0), geti(1, 0), geti(2, 0), getb(3)
		op.DilationW, op.DilationH = geti(4, 1), geti(5, 1)
	case TFLDepthwiseConv:
		op.Padding, op.StrideW, op.StrideH, op.DepthMultiplier, op.Activation = pad(0), geti(1, 0), geti(2, 0), geti(3, 0), getb(4)
		op.DilationW, op.DilationH = geti(5, 1), geti(6, 1)
	case TFLMaxPool2D, TFLAveragePool2D:
		op.Padding, op.StrideW, op.StrideH, op.FilterW, op.FilterH, op.Activation = pad(0), geti(1, 0), geti(2, 0), geti(3, 0), geti(4, 0), getb(5)
	case TFLFullyConn:
		op.Activation = getb(0)
		op.KeepNumDims = getb(2) != 0
	case TFLAdd, TFLMul, TFLSub, TFLDiv:
		op.Activation = getb(0)
	case TFLSum, TFLReduceMax:
		op.KeepDims = getb(0) != 0
	case TFLConcat:
		op.Axis, op.Activation = geti(0, 0), getb(1)
	case TFLSoftmax:
		op.Beta, err = o.float32(0, 0)
	case TFLReshape:
		op.NewShape, err = o.ints32(0)
	case TFLSqueeze:
		op.SqueezeDims, err = o.ints32(0)
	}
	return err
}

// check validates tensor indices of the graph.
func (m *TFLModel) check() error {
	in := func(idx []int, optional bool) error {
		for _, i := range idx {
			if i == -1 && optional {
				continue
			}
			if i < 0 || i >= len(m.Tensors) {
				return fmt.Errorf("%w: tensor index %d of %d", ErrTFLite, i, len(m.Tensors))
			}
		}
		return nil
	}
	if err := in(m.Inputs, false); err != nil {
		return err
	}
	if err := in(m.Outputs, false); err != nil {
		return err
	}
	for k, op := range m.Ops {
		if err := in(op.Inputs, true); err != nil {
			return fmt.Errorf("operator %d: %w", k, err)
		}
		if err := in(op.Outputs, false); err != nil {
			return fmt.Errorf("operator %d: %w", k, err)
		}
	}
	return nil
}
