package store

import (
	"encoding/hex"
	"math"
	"sync"
)

// seriesID names a series in the raw history and the rollups: the FNV-64a
// hash of its key and the member that recorded it, separated by zero
// bytes. Every member of a fleet computes the same id without asking the
// database, and a raw row carries 8 bytes instead of five strings.
func seriesID(k SeriesKey, member string) int64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i, s := range [...]string{k.Check, k.Vantage, string(k.Route), string(k.Transport.OrHTTP1()), member} {
		if i > 0 {
			h ^= 0
			h *= prime
		}
		for j := 0; j < len(s); j++ {
			h ^= uint64(s[j])
			h *= prime
		}
	}
	return int64(h)
}

// AttemptKeyOf is the series of a history row.
func AttemptKeyOf(r HistoryRow) SeriesKey {
	return SeriesKey{Check: r.Check, Vantage: r.Vantage, Route: r.Route, Transport: r.Transport.OrHTTP1()}
}

// micros is a duration in milliseconds as whole microseconds, the unit
// the raw history keeps (an integer takes 3 or 4 bytes where a float
// takes 8).
func micros(ms float64) int64 {
	if ms <= 0 || math.IsNaN(ms) {
		return 0
	}
	return int64(math.Round(ms * 1000))
}

// traceBytes is a W3C trace id (32 hex digits) as its 16 bytes; anything
// else is kept as it is.
func traceBytes(id string) []byte {
	if len(id) == 32 {
		if b, err := hex.DecodeString(id); err == nil {
			return b
		}
	}
	return []byte(id)
}

// namedSeries are the series ids this process knows are in series_keys.
type namedSeries struct {
	mu  sync.Mutex
	ids map[int64]struct{}
}

func (s *Store) named(id int64) bool {
	s.seriesIDs.mu.Lock()
	defer s.seriesIDs.mu.Unlock()
	_, ok := s.seriesIDs.ids[id]
	return ok
}

func (s *Store) name(ids []int64) {
	s.seriesIDs.mu.Lock()
	defer s.seriesIDs.mu.Unlock()
	if s.seriesIDs.ids == nil {
		s.seriesIDs.ids = map[int64]struct{}{}
	}
	for _, id := range ids {
		s.seriesIDs.ids[id] = struct{}{}
	}
}
