package vision

import (
	"time"

	"github.com/classpulse/classpulse/stream"
)

// window accumulates one summary interval. Only these sums survive a
// frame: no pixel, crop, landmark or feature vector is kept.
type window struct {
	frames, faces, masked, emoFrames int
	attention, eyes, yaw, pitch      float64
	emo                              [7]float64
	learn                            [4]float64
	learnFrames                      int
}

func newWindow() *window { return &window{} }

// add counts one scored frame; faces holds at most the learner's face.
func (w *window) add(faces []FaceScore) {
	w.frames++
	if len(faces) == 0 {
		return
	}
	f := faces[0]
	w.faces++
	if f.Masked {
		w.masked++
	}
	w.attention += f.Attention
	w.eyes += f.EyesOpen
	w.yaw += f.Head.Yaw
	w.pitch += f.Head.Pitch
	if f.Emotions != nil {
		for i, v := range f.Emotions.Values() {
			w.emo[i] += v
		}
		w.emoFrames++
	}
	if f.Learning != nil {
		for i, v := range f.Learning.Values() {
			w.learn[i] += v
		}
		w.learnFrames++
	}
}

// summary builds the window's Score event. Attention counts a frame
// without a face as 0; head pose and eye openness average over face frames
// and are absent without any; emotions average over unmasked face frames
// and are renormalised; learning emotions average over face frames.
func (w *window) summary(cfg WorkerConfig, model string, end time.Time) *stream.Score {
	s := &stream.Score{
		Header:  stream.NewHeader(cfg.Student, end),
		Session: cfg.Session, Course: cfg.Course,
		WindowMS: int(cfg.Window / time.Millisecond), Frames: min(w.frames, 1000), Model: model,
	}
	if w.frames == 0 {
		return s
	}
	n := float64(w.frames)
	s.FaceRatio = clamp01(float64(w.faces) / n)
	s.MaskedRatio = min(clamp01(float64(w.masked)/n), s.FaceRatio)
	s.Attention = clamp01(w.attention / n)
	if w.faces > 0 {
		fn := float64(w.faces)
		s.Head = &stream.Head{Yaw: w.yaw / fn, Pitch: w.pitch / fn}
		eo := clamp01(w.eyes / fn)
		s.EyesOpen = &eo
	}
	if w.emoFrames > 0 {
		var sum float64
		for _, v := range w.emo {
			sum += v
		}
		if sum > 0 {
			e := w.emo
			for i := range e {
				e[i] /= sum
			}
			s.Emotions = &stream.Emotions{Neutral: e[0], Happy: e[1], Sad: e[2], Angry: e[3], Fearful: e[4], Disgusted: e[5], Surprised: e[6]}
		}
	}
	if w.learnFrames > 0 {
		ln := float64(w.learnFrames)
		s.Learning = &stream.Learning{Engaged: clamp01(w.learn[0] / ln), Confused: clamp01(w.learn[1] / ln),
			Bored: clamp01(w.learn[2] / ln), Frustrated: clamp01(w.learn[3] / ln)}
	}
	return s
}
