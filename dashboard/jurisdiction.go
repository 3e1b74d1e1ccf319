package dashboard

import (
	"strings"

	"github.com/classpulse/classpulse/stream"
)

// hideEmotions reports whether the jurisdiction profile forbids emotion
// inference (eu): the dashboard then shows no emotion field and no
// warning derived from one, even if such data reached Redis (written
// before the profile was switched on, or by a processor run without
// --jurisdiction).
func (s *Server) hideEmotions() bool { return !stream.EmotionInferenceAllowed(s.cfg.Jurisdiction) }

// emotionWords are the names of inferred emotions: the seven basic ones and
// the four learning emotions.
var emotionWords = append(append([]string{}, stream.EmotionNames...), stream.LearningNames...)

// emotionDerived reports whether a warning comes from emotion inference:
// its rule or one of its evidence keys names an emotion (the confused,
// frustrated and class_confused rules; custom rules over confused_1m …).
func emotionDerived(rule string, evidence map[string]float64) bool {
	if namesEmotion(rule) {
		return true
	}
	for k := range evidence {
		if namesEmotion(k) {
			return true
		}
	}
	return false
}

func namesEmotion(s string) bool {
	s = strings.ToLower(s)
	for _, w := range emotionWords {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// stripTile removes the dominant learning emotion from an encoded tile when
// emotions are hidden. A tile that does not decode is returned as it is:
// every reader rejects it anyway.
func (s *Server) stripTile(raw []byte) []byte {
	if !s.hideEmotions() {
		return raw
	}
	var t stream.Tile
	if err := stream.DecodeInto(raw, &t); err != nil || t.Dominant == "" {
		return raw
	}
	t.Dominant = ""
	b, err := stream.Encode(&t)
	if err != nil {
		return raw
	}
	return b
}

// stripLive removes the learning emotions from a student's live series
// when emotions are hidden.
func (s *Server) stripLive(l *LiveSeries) {
	if l == nil || !s.hideEmotions() {
		return
	}
	for i := range l.Points {
		l.Points[i].Dominant, l.Points[i].Learning = "", nil
	}
}
