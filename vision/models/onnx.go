package models

import (
	"encoding/binary"
	"math"
)

// A minimal protobuf wire encoder for the handful of ONNX messages the
// converter writes (onnx.proto3: ModelProto, GraphProto, NodeProto,
// AttributeProto, TensorProto, ValueInfoProto). Field numbers are ONNX's.

type pb []byte

func (b pb) tag(field, wire int) pb { return binary.AppendUvarint(b, uint64(field<<3|wire)) }
func (b pb) varint(field int, v uint64) pb {
	return binary.AppendUvarint(b.tag(field, 0), v)
}
func (b pb) bytes(field int, v []byte) pb {
	return append(binary.AppendUvarint(b.tag(field, 2), uint64(len(v))), v...)
}
func (b pb) str(field int, s string) pb { return b.bytes(field, []byte(s)) }
func (b pb) fixed32(field int, v uint32) pb {
	return binary.LittleEndian.AppendUint32(b.tag(field, 5), v)
}
func (b pb) packedInts(field int, vs []int64) pb {
	var p []byte
	for _, v := range vs {
		p = binary.AppendUvarint(p, uint64(v))
	}
	return b.bytes(field, p)
}

// ONNX enum values used here.
const (
	onnxFloat    = 1 // TensorProto.DataType FLOAT
	attrFloat    = 1 // AttributeProto.AttributeType FLOAT
	attrInt      = 2
	attrString   = 3
	attrInts     = 7
	onnxIRVer    = 7
	onnxOpsetVer = 11
)

// attr is one node attribute: exactly one of the value fields is used.
type attr struct {
	name string
	i    *int64
	f    *float32
	s    string
	ints []int64
}

func intAttr(name string, v int64) attr     { return attr{name: name, i: &v} }
func floatAttr(name string, v float32) attr { return attr{name: name, f: &v} }
func intsAttr(name string, v ...int64) attr { return attr{name: name, ints: v} }

func (a attr) encode() pb {
	b := pb(nil).str(1, a.name)
	switch {
	case a.i != nil:
		b = b.varint(3, uint64(*a.i)).varint(20, attrInt)
	case a.f != nil:
		b = b.fixed32(2, math.Float32bits(*a.f)).varint(20, attrFloat)
	case a.ints != nil:
		b = b.packedInts(8, a.ints).varint(20, attrInts)
	default:
		b = b.bytes(4, []byte(a.s)).varint(20, attrString)
	}
	return b
}

type node struct {
	op      string
	name    string
	inputs  []string
	outputs []string
	attrs   []attr
}

func (n node) encode() pb {
	var b pb
	for _, in := range n.inputs {
		b = b.str(1, in)
	}
	for _, out := range n.outputs {
		b = b.str(2, out)
	}
	b = b.str(3, n.name).str(4, n.op)
	for _, a := range n.attrs {
		b = b.bytes(5, a.encode())
	}
	return b
}

type initializer struct {
	name string
	dims []int64
	data []float32
}

func (t initializer) encode() pb {
	b := pb(nil).packedInts(1, t.dims).varint(2, onnxFloat).str(8, t.name)
	raw := make([]byte, 0, 4*len(t.data))
	for _, v := range t.data {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	return b.bytes(9, raw)
}

type valueInfo struct {
	name string
	dims []int64
}

func (v valueInfo) encode() pb {
	var shape pb
	for _, d := range v.dims {
		shape = shape.bytes(1, pb(nil).varint(1, uint64(d)))
	}
	tensorType := pb(nil).varint(1, onnxFloat).bytes(2, shape)
	return pb(nil).str(1, v.name).bytes(2, pb(nil).bytes(1, tensorType))
}

// graph collects a model under construction.
type graph struct {
	name    string
	nodes   []node
	inits   []initializer
	inputs  []valueInfo
	outputs []valueInfo
}

// encodeModel serialises g as an ONNX ModelProto at opset 11, with
// metadata_props carrying key/value pairs (the model version among them).
func (g *graph) encodeModel(producerVersion string, modelVersion int64, meta [][2]string) []byte {
	var gb pb
	for _, n := range g.nodes {
		gb = gb.bytes(1, n.encode())
	}
	gb = gb.str(2, g.name)
	for _, t := range g.inits {
		gb = gb.bytes(5, t.encode())
	}
	for _, v := range g.inputs {
		gb = gb.bytes(11, v.encode())
	}
	for _, v := range g.outputs {
		gb = gb.bytes(12, v.encode())
	}
	m := pb(nil).varint(1, onnxIRVer).
		str(2, "classpulse-edge").str(3, producerVersion).
		varint(5, uint64(modelVersion)).
		bytes(7, gb).
		bytes(8, pb(nil).str(1, "").varint(2, onnxOpsetVer))
	for _, kv := range meta {
		m = m.bytes(14, pb(nil).str(1, kv[0]).str(2, kv[1]))
	}
	return m
}
