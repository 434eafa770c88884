package engine

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/notifier"
)

// JournalFile keeps, in the state directory, what a daemon decided and
// posted without its store, so that a kill -9 before the hand-over does
// not make the store open (and post) those incidents a second time.
const JournalFile = "alone.journal"

// journalSize is the space reserved for the journal when the daemon
// starts: a store that fails is often a full disk, and writing within
// space already allocated still works then. Half of it holds one record
// (about fifty incidents with their messages); beyond that the messages
// not yet delivered are left out first.
const journalSize = 512 << 10

// journal is the alone journal: one record, rewritten in place (an 8-byte
// length, then JSON), synced at each change.
type journal struct {
	mu sync.Mutex
	f  *os.File
}

// aloneState is what memory holds that the store does not.
type aloneState struct {
	Incidents []store.Record `json:"incidents"`
	Messages  []aloneMessage `json:"messages"`
}

type aloneMessage struct {
	Message  notifier.Message `json:"message"`
	Incident string           `json:"incident"`
}

// openJournal opens (or creates, with its space reserved) the journal in
// dir. The daemon runs without one when it cannot: the journal only
// narrows what a crash during a store outage can cost.
func openJournal(dir string) (*journal, error) {
	if dir == "" {
		return nil, errors.New("no state directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, JournalFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.Size() < journalSize {
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, journalSize); err != nil {
			// A filesystem without fallocate: a sparse file still works
			// while there is space.
			f.Truncate(journalSize)
		}
	}
	return &journal{f: f}, nil
}

// load reads what a previous process left; empty when it handed
// everything over.
func (j *journal) load() (aloneState, error) {
	var st aloneState
	if j == nil {
		return st, nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	var head [8]byte
	if _, err := j.f.ReadAt(head[:], 0); err != nil {
		return st, nil // new and empty
	}
	v := binary.BigEndian.Uint64(head[:])
	off, n := int64(8), v&^(1<<63)
	if v>>63 == 1 {
		off = journalSize / 2
	}
	if n == 0 {
		return st, nil
	}
	if n > journalSize/2-8 {
		return st, fmt.Errorf("journal: a record of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := j.f.ReadAt(b, off); err != nil {
		return st, fmt.Errorf("journal: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return aloneState{}, fmt.Errorf("journal: %w", err)
	}
	return st, nil
}

// save writes what snapshot returns in place of the previous record. The
// snapshot is taken under the journal's lock, so that two saves at once
// cannot write an older state over a newer one. The length goes last: a
// crash half way leaves the old record whole or the new one.
func (j *journal) save(snapshot func() aloneState) error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	st := snapshot()
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	for len(b) > journalSize/2-8 && len(st.Messages) > 0 {
		st.Messages = st.Messages[:len(st.Messages)/2] // keep the incidents
		b, _ = json.Marshal(st)
	}
	if len(b) > journalSize/2-8 {
		return fmt.Errorf("journal: %d bytes do not fit", len(b))
	}
	// Two halves: the new record goes to the half the old one is not in,
	// then the header points at it.
	var head [8]byte
	j.f.ReadAt(head[:], 0)
	off := int64(8)
	if binary.BigEndian.Uint64(head[:])>>63 == 0 {
		off = journalSize / 2
	}
	if _, err := j.f.WriteAt(b, off); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return j.setHead(off, len(b))
}

// clear empties the journal: the store has it all.
func (j *journal) clear() error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.setHead(8, 0)
}

// setHead writes the header: the top bit says which half, the rest the
// length. Caller holds j.mu.
func (j *journal) setHead(off int64, n int) error {
	v := uint64(n)
	if off != 8 {
		v |= 1 << 63
	}
	var head [8]byte
	binary.BigEndian.PutUint64(head[:], v)
	if _, err := j.f.WriteAt(head[:], 0); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return j.f.Sync()
}

func (j *journal) close() {
	if j != nil {
		j.f.Close()
	}
}
