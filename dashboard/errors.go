package dashboard

import "errors"

// Sentinel errors of the package; check them with errors.Is.
var (
	// ErrBadToken is wrapped by every token that fails to parse or verify.
	ErrBadToken = errors.New("bad token")
	// ErrExpired is wrapped when a token's expiry has passed.
	ErrExpired = errors.New("token expired")
	// ErrNotAvailable is returned by a StudentReader that has no data of
	// the asked kind; the pages show "not available" instead of failing.
	ErrNotAvailable = errors.New("not available")
	// ErrNotFound is returned when a student or warning does not exist.
	ErrNotFound = errors.New("not found")
)
