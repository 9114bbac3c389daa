package spool

import (
	"errors"
	"time"

	"go.uber.org/zap"
)

// volumeMaxAge is how long a free-space measurement is reused.
const volumeMaxAge = time.Second

// normalRecordBytes is the record size Accepting assumes before the first
// Write: a batch of some 60 events.
const normalRecordBytes = 4 << 10

// volume is what the spool knows of the free space on its volume, guarded
// by Spool.mu.
type volume struct {
	unsupported bool      // statfs cannot tell on this platform
	at          time.Time // of the last measurement; zero forces a new one
	free, total int64
	since       int64 // bytes appended since the measurement
	reserve     int64
	warned      time.Time // of the last statfs failure logged
}

// initVolume measures the volume and sets the reserve.
func (s *Spool) initVolume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshVolumeLocked(time.Now())
	switch {
	case s.cfg.ReserveBytes > 0:
		s.vol.reserve = s.cfg.ReserveBytes
	case s.vol.unsupported || s.vol.at.IsZero():
		s.vol.reserve = s.cfg.SegmentBytes
	default:
		s.vol.reserve = min(s.cfg.SegmentBytes, s.vol.total/DefaultReserveDivisor)
	}
}

// refreshVolumeLocked measures the free space now.
func (s *Spool) refreshVolumeLocked(now time.Time) {
	if s.vol.unsupported {
		return
	}
	free, total, err := s.fs.Statfs(s.dir)
	if errors.Is(err, errors.ErrUnsupported) {
		s.vol.unsupported = true
		s.log.Info("spool: free space cannot be measured here; only the byte cap applies", zap.Error(err))
		return
	}
	if err != nil {
		if now.Sub(s.vol.warned) > time.Minute {
			s.vol.warned = now
			s.log.Warn("spool: measure free space", zap.Error(err))
		}
		return
	}
	s.vol.at, s.vol.free, s.vol.total, s.vol.since = now, free, total, 0
}

// freeLocked returns the free space on the volume, measuring it again when
// the last measurement is over a second old or, with need > 0, when what
// is left after need bytes nears the reserve (so a Write is refused on a
// fresh measurement, and accepted as soon as space was freed). It returns
// false when the platform cannot tell.
func (s *Spool) freeLocked(need int64) (int64, bool) {
	if s.vol.unsupported {
		return 0, false
	}
	now := time.Now()
	est := s.vol.free - s.vol.since
	if s.vol.at.IsZero() || now.Sub(s.vol.at) > volumeMaxAge || (need > 0 && est-need < 2*s.vol.reserve) {
		s.refreshVolumeLocked(now)
		est = s.vol.free - s.vol.since
	}
	if s.vol.at.IsZero() {
		return 0, false // never measured
	}
	return est, true
}

// volumeChanged makes the next free-space check measure again (space was
// freed).
func (s *Spool) volumeChanged() {
	s.mu.Lock()
	s.vol.at = time.Time{}
	s.mu.Unlock()
}

// lowOnSpace reports whether less than twice the reserve is free.
func (s *Spool) lowOnSpace() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	free, ok := s.freeLocked(0)
	return ok && free < 2*s.vol.reserve
}
