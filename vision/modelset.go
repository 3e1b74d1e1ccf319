package vision

import (
	"fmt"
	"os"

	pigo "github.com/esimov/pigo/core"
	"gocv.io/x/gocv"

	"github.com/classpulse/classpulse/vision/models"
)

// Models is a loaded, checksum-verified model set. Its OpenCV objects are
// not safe for concurrent use: one Models per scoring goroutine.
type Models struct {
	Manifest *models.Manifest
	haar     gocv.CascadeClassifier
	pigo     *pigo.Pigo
	expr     *cnn
	lm       *cnn
	kpca     *models.KPCA
	// blaze and blazeBack are BlazeFace short- and full-range.
	blaze, blazeBack *blazeNet
	// mtcnn is MTCNN's P/R/O-Net cascade.
	mtcnn *mtcnnNets
}

// LoadModels loads the model set in dir after checking every file against
// the manifest's checksums, so a missing, truncated or altered file is a
// clear error rather than an abort inside OpenCV. The caller must Close it.
func LoadModels(dir string) (*Models, error) {
	man, paths, err := models.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	m := &Models{Manifest: man}
	if m.kpca, err = models.LoadKPCA(paths[models.RoleKPCA]); err != nil {
		return nil, err
	}
	if len(m.kpca.Landmarks[0]) != 256 {
		return nil, fmt.Errorf("%w: kpca expects %d features, the nets give 256", models.ErrModel, len(m.kpca.Landmarks[0]))
	}
	if m.pigo, err = loadPigo(paths[models.RolePigo]); err != nil {
		return nil, err
	}
	m.haar = gocv.NewCascadeClassifier()
	if !m.haar.Load(paths[models.RoleHaar]) {
		m.haar.Close()
		return nil, fmt.Errorf("%w: OpenCV could not load the Haar cascade %s", models.ErrModel, paths[models.RoleHaar])
	}
	if m.expr, err = loadCNN(paths[models.RoleExpression], []string{models.OutFeatures, models.OutExpressions}, []int{256, 7}); err != nil {
		m.haar.Close()
		return nil, err
	}
	if m.lm, err = loadCNN(paths[models.RoleLandmark], []string{models.OutLandmarks}, []int{136}); err != nil {
		m.haar.Close()
		m.expr.Close()
		return nil, err
	}
	// One run of each CNN on a grey face square: OpenCV sets its layers up
	// on the first forward pass, which would otherwise land on the first
	// frame with a face (several times a normal frame's cost).
	if err := m.warmUp(); err != nil {
		m.Close()
		return nil, fmt.Errorf("%w: %v", models.ErrModel, err)
	}
	if err := m.loadBlaze(paths); err != nil {
		m.Close()
		return nil, err
	}
	if m.mtcnn, err = loadMTCNN(paths); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// loadPigo unpacks pigo's cascade. pigo indexes the bytes without bounds
// checks, so a panic on a damaged file becomes an error.
func loadPigo(path string) (p *pigo.Pigo, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: pigo cascade: %v", models.ErrModel, err)
	}
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%w: pigo cascade %s is damaged: %v", models.ErrModel, path, r)
		}
	}()
	if len(b) < 16 {
		return nil, fmt.Errorf("%w: pigo cascade %s is too short", models.ErrModel, path)
	}
	return pigo.NewPigo().Unpack(b)
}

func (m *Models) warmUp() error {
	const side = models.FaceInputSize
	grey := make([]float32, side*side*3)
	for i := range grey {
		grey[i] = 128
	}
	blob, err := blobFromRGB(grey)
	if err != nil {
		return err
	}
	defer blob.Close()
	out := make([][]float32, 2)
	if err := m.expr.forward(blob, out); err != nil {
		return err
	}
	return m.lm.forward(blob, out[:1])
}

// Version is the model-set version that goes into every event.
func (m *Models) Version() string { return m.Manifest.Version }

// loadBlaze loads both BlazeFace nets from checksum-verified paths.
func (m *Models) loadBlaze(paths map[string]string) (err error) {
	if m.blaze, err = loadBlaze(paths[models.RoleBlazeFace], 128); err != nil {
		return err
	}
	m.blazeBack, err = loadBlaze(paths[models.RoleBlazeFaceBack], 256)
	return err
}

// Close frees the OpenCV objects.
func (m *Models) Close() error {
	m.haar.Close()
	if m.expr != nil {
		m.expr.Close()
	}
	if m.lm != nil {
		m.lm.Close()
	}
	if m.blaze != nil {
		m.blaze.Close()
	}
	if m.blazeBack != nil {
		m.blazeBack.Close()
	}
	if m.mtcnn != nil {
		m.mtcnn.Close()
	}
	return nil
}
