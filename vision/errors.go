package vision

import "errors"

// ErrBadImage is wrapped by every error about an image or frame that cannot
// be scored: unreadable, empty, of the wrong type or size.
var ErrBadImage = errors.New("bad image")

// ErrNoConsent is returned when capture is asked for without recorded
// camera consent.
var ErrNoConsent = errors.New("no camera consent recorded")
