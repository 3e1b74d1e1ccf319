package vision

import (
	"fmt"
	"strings"
)

// emotionForbidden lists jurisdictions whose law forbids emotion
// recognition in education. The EU AI Act (Regulation 2024/1689, Art.
// 5(1)(f)) prohibits inferring emotions of natural persons in education
// institutions except for medical or safety reasons.
var emotionForbidden = map[string]bool{"eu": true}

// knownJurisdictions are the accepted values; others are an error so a
// typo cannot silently turn emotion inference on.
var knownJurisdictions = map[string]bool{"": true, "none": true, "eu": true, "cn": true, "us": true, "uk": true}

// EmotionForbidden reports whether emotion inference must be off in j.
func EmotionForbidden(j string) (bool, error) {
	j = strings.ToLower(strings.TrimSpace(j))
	if !knownJurisdictions[j] {
		return true, fmt.Errorf("jurisdiction %q unknown (one of: eu, uk, us, cn, none)", j)
	}
	return emotionForbidden[j], nil
}
