package vision

import (
	"fmt"
	"os"

	"gocv.io/x/gocv"
)

// MaxImageBytes bounds an image file read for scoring.
const MaxImageBytes = 32 << 20

// ReadImage reads and decodes an image file into a BGR Mat the caller
// owns. Missing, empty, oversized, undecodable and degenerate files are
// errors wrapping ErrBadImage; OpenCV never sees an unchecked buffer.
func ReadImage(path string) (gocv.Mat, error) {
	st, err := os.Stat(path)
	if err != nil {
		return gocv.Mat{}, fmt.Errorf("%w: %v", ErrBadImage, err)
	}
	if st.Size() == 0 || st.Size() > MaxImageBytes {
		return gocv.Mat{}, fmt.Errorf("%w: %s is %d bytes (want 1..%d)", ErrBadImage, path, st.Size(), MaxImageBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return gocv.Mat{}, fmt.Errorf("%w: %v", ErrBadImage, err)
	}
	return DecodeImage(b)
}

// DecodeImage decodes JPEG/PNG bytes into a BGR Mat the caller owns.
func DecodeImage(b []byte) (gocv.Mat, error) {
	if len(b) < 8 || len(b) > MaxImageBytes {
		return gocv.Mat{}, fmt.Errorf("%w: %d bytes is not an image", ErrBadImage, len(b))
	}
	m, err := gocv.IMDecode(b, gocv.IMReadColor)
	if err != nil {
		return gocv.Mat{}, fmt.Errorf("%w: %v", ErrBadImage, err)
	}
	if err := checkFrame(m); err != nil {
		m.Close()
		return gocv.Mat{}, err
	}
	return m, nil
}
