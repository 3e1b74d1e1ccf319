package spool

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
)

const (
	cursorFile  = "cursor"
	cursorMagic = "CPCURS01"
	cursorLen   = len(cursorMagic) + 8 + 8 + 8 + 4
)

// position is a place between records: segment id, byte offset in it, and
// the number of records before the offset in that segment.
type position struct {
	seg uint64
	off int64
	idx int
}

func (p position) after(q position) bool {
	return p.seg > q.seg || (p.seg == q.seg && p.off > q.off)
}

func readCursor(path string) (position, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return position{}, err
	}
	return decodeCursor(b)
}

func decodeCursor(b []byte) (position, error) {
	if len(b) != cursorLen || string(b[:len(cursorMagic)]) != cursorMagic {
		return position{}, fmt.Errorf("%w: cursor file has the wrong size or header", ErrCorrupt)
	}
	body := b[:cursorLen-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[cursorLen-4:]) {
		return position{}, fmt.Errorf("%w: cursor checksum mismatch", ErrCorrupt)
	}
	o := len(cursorMagic)
	p := position{
		seg: binary.BigEndian.Uint64(b[o:]),
		off: int64(binary.BigEndian.Uint64(b[o+8:])),
		idx: int(binary.BigEndian.Uint64(b[o+16:])),
	}
	if p.off < 0 || p.idx < 0 {
		return position{}, fmt.Errorf("%w: cursor out of range", ErrCorrupt)
	}
	return p, nil
}

func encodeCursor(p position) []byte {
	b := make([]byte, 0, cursorLen)
	b = append(b, cursorMagic...)
	b = binary.BigEndian.AppendUint64(b, p.seg)
	b = binary.BigEndian.AppendUint64(b, uint64(p.off))
	b = binary.BigEndian.AppendUint64(b, uint64(p.idx))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// saveCursor persists s.cur atomically (write, fsync, rename). A failure is
// logged, not returned: the worst outcome is a redelivery after a restart.
func (s *Spool) saveCursor() {
	tmp := s.path(cursorFile + ".tmp")
	err := func() error {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(encodeCursor(s.cur)); err != nil {
			f.Close()
			return err
		}
		if !s.cfg.NoSync {
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(tmp, s.path(cursorFile))
	}()
	if err != nil {
		s.logger.Error("cannot save spool cursor; records may be delivered twice after a restart", "err", err)
	}
}
