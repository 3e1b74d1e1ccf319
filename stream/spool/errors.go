package spool

import "errors"

// ErrCorrupt is wrapped by every error about a record or cursor whose bytes
// fail their checks (bad magic, length out of range, checksum mismatch).
var ErrCorrupt = errors.New("spool: corrupt data")

// ErrTooLarge is returned by Append for a record larger than MaxRecordBytes.
var ErrTooLarge = errors.New("spool: record too large")

// ErrClosed is returned by calls on a closed spool.
var ErrClosed = errors.New("spool: closed")
