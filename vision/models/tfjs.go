package models

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// ErrManifest is wrapped by every error about a malformed weights manifest
// or shard.
var ErrManifest = errors.New("tfjs weights manifest")

// maxElements bounds one tensor and a whole manifest: far above face-api's
// nets, far below what would exhaust memory.
const maxElements = 1 << 26

// WeightSpec is one tensor entry of a TensorFlow.js weights manifest.
type WeightSpec struct {
	Name         string        `json:"name"`
	Shape        []int         `json:"shape"`
	DType        string        `json:"dtype"`
	Quantization *Quantization `json:"quantization,omitempty"`
}

// Quantization describes affine quantisation: value = q*Scale + Min.
type Quantization struct {
	DType string  `json:"dtype"`
	Scale float64 `json:"scale"`
	Min   float64 `json:"min"`
}

// WeightGroup is one manifest group: shard files read back to back.
type WeightGroup struct {
	Paths   []string     `json:"paths"`
	Weights []WeightSpec `json:"weights"`
}

// Tensor is a dense float32 tensor in the layout of its source (TF: NHWC,
// HWIO filters).
type Tensor struct {
	Shape []int
	Data  []float32
}

// ParseManifest decodes and checks a weights manifest: known dtypes, sane
// shapes, unique names, shard paths that stay inside the manifest's folder.
func ParseManifest(data []byte) ([]WeightGroup, error) {
	var groups []WeightGroup
	if err := json.Unmarshal(data, &groups); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if len(groups) == 0 {
		return nil, fmt.Errorf("%w: no weight groups", ErrManifest)
	}
	seen := map[string]bool{}
	total := 0
	for gi, g := range groups {
		if len(g.Paths) == 0 {
			return nil, fmt.Errorf("%w: group %d has no shard paths", ErrManifest, gi)
		}
		for _, p := range g.Paths {
			if p == "" || filepath.IsAbs(p) || strings.Contains(p, "..") || strings.ContainsAny(p, "\\\x00") {
				return nil, fmt.Errorf("%w: shard path %q must be a plain relative name", ErrManifest, p)
			}
		}
		for _, w := range g.Weights {
			if w.Name == "" || seen[w.Name] {
				return nil, fmt.Errorf("%w: weight name %q empty or repeated", ErrManifest, w.Name)
			}
			seen[w.Name] = true
			n, err := elements(w.Shape)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrManifest, w.Name, err)
			}
			if total += n; total > maxElements {
				return nil, fmt.Errorf("%w: more than %d elements in all", ErrManifest, maxElements)
			}
			if _, err := w.elemBytes(); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrManifest, w.Name, err)
			}
		}
	}
	return groups, nil
}

func elements(shape []int) (int, error) {
	if len(shape) > 6 {
		return 0, fmt.Errorf("rank %d above 6", len(shape))
	}
	n := 1
	for _, d := range shape {
		if d <= 0 || d > maxElements {
			return 0, fmt.Errorf("dimension %d out of range", d)
		}
		if n *= d; n > maxElements {
			return 0, fmt.Errorf("more than %d elements", maxElements)
		}
	}
	return n, nil
}

func (w *WeightSpec) elemBytes() (int, error) {
	if w.DType != "float32" && w.DType != "int32" {
		return 0, fmt.Errorf("dtype %q not supported (float32, int32)", w.DType)
	}
	if q := w.Quantization; q != nil {
		if math.IsNaN(q.Scale) || math.IsInf(q.Scale, 0) || math.IsNaN(q.Min) || math.IsInf(q.Min, 0) {
			return 0, errors.New("quantization scale/min not finite")
		}
		switch q.DType {
		case "uint8":
			return 1, nil
		case "uint16":
			return 2, nil
		}
		return 0, fmt.Errorf("quantization dtype %q not supported (uint8, uint16)", q.DType)
	}
	return 4, nil
}

// DecodeWeights turns the concatenated shard bytes of groups into tensors.
// The byte count must match the manifest exactly.
func DecodeWeights(groups []WeightGroup, shards []byte) (map[string]Tensor, error) {
	out := map[string]Tensor{}
	off := 0
	for _, g := range groups {
		for _, w := range g.Weights {
			n, err := elements(w.Shape)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrManifest, w.Name, err)
			}
			eb, err := w.elemBytes()
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrManifest, w.Name, err)
			}
			if off+n*eb > len(shards) {
				return nil, fmt.Errorf("%w: shards end at byte %d, inside %s", ErrManifest, len(shards), w.Name)
			}
			b := shards[off : off+n*eb]
			off += n * eb
			data := make([]float32, n)
			q := w.Quantization
			for i := range data {
				switch {
				case q != nil && eb == 1:
					data[i] = float32(float64(b[i])*q.Scale + q.Min)
				case q != nil:
					data[i] = float32(float64(binary.LittleEndian.Uint16(b[2*i:]))*q.Scale + q.Min)
				case w.DType == "int32":
					data[i] = float32(int32(binary.LittleEndian.Uint32(b[4*i:])))
				default:
					data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
				}
			}
			for _, v := range data {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return nil, fmt.Errorf("%w: %s holds a non-finite value", ErrManifest, w.Name)
				}
			}
			out[w.Name] = Tensor{Shape: append([]int(nil), w.Shape...), Data: data}
		}
	}
	if off != len(shards) {
		return nil, fmt.Errorf("%w: %d shard bytes left over after the last weight", ErrManifest, len(shards)-off)
	}
	return out, nil
}

// LoadTFJS reads a manifest file and its shards from the manifest's folder.
func LoadTFJS(manifestPath string) (map[string]Tensor, error) {
	data, err := os.ReadFile(manifestPath)
	if err != nil {
		return nil, err
	}
	groups, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", manifestPath, err)
	}
	var shards []byte
	dir := filepath.Dir(manifestPath)
	for _, g := range groups {
		for _, p := range g.Paths {
			b, err := os.ReadFile(filepath.Join(dir, p))
			if err != nil {
				return nil, fmt.Errorf("%s: shard: %w", manifestPath, err)
			}
			shards = append(shards, b...)
		}
	}
	w, err := DecodeWeights(groups, shards)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", manifestPath, err)
	}
	return w, nil
}
