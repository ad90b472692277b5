package localauth

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-adauth/adauth/groups"
)

// pollInterval is how often the store looks at the users file.
const pollInterval = time.Second

// AccountDisabledError is the error Authenticate returns for a disabled
// user who gave the right password. Its UserMessage is meant for the
// login page.
type AccountDisabledError struct {
	Username string // lower-cased
}

func (e *AccountDisabledError) Error() string {
	return fmt.Sprintf("local user %q is disabled", e.Username)
}

// UserMessage is what the user reads on the login page.
func (e *AccountDisabledError) UserMessage() string {
	return "This account is disabled. Ask IT to enable it."
}

// Store checks passwords against a users file and re-reads the file when
// it changes. It is safe for concurrent use.
type Store struct {
	path    string
	users   atomic.Pointer[snapshot]
	onError atomic.Pointer[func(error)]

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// snapshot is one good reading of the file. It is never modified once
// stored, so Authenticate reads it without a lock.
type snapshot struct {
	users    map[string]*entry // by lower-cased username
	dummy    verifier          // for unknown users and unusable passwords
	stat     fileStat          // of the file this was read from
	verified *verified         // credentials that matched, for this reading only
}

type entry struct {
	id       groups.Identity
	hash     verifier
	disabled bool
}

// fileStat is what tells the poller the file has changed: an editor that
// saves by rename changes the inode, one that writes in place the time or
// the size.
type fileStat struct {
	fi      os.FileInfo
	modTime time.Time
	size    int64
}

func statOf(fi os.FileInfo) fileStat {
	return fileStat{fi: fi, modTime: fi.ModTime(), size: fi.Size()}
}

func (a fileStat) same(b fileStat) bool {
	if a.fi == nil || b.fi == nil {
		return a.fi == b.fi
	}
	return os.SameFile(a.fi, b.fi) && a.modTime.Equal(b.modTime) && a.size == b.size
}

// Open reads the users file at path and starts watching it: when the file
// changes it is read again, and a file that does not read or validate
// keeps the last good users (see OnReloadError). Close stops the watching.
func Open(path string) (*Store, error) {
	return open(path, pollInterval)
}

func open(path string, every time.Duration) (*Store, error) {
	s := &Store{path: path, stop: make(chan struct{}), done: make(chan struct{})}
	snap, err := s.load(nil)
	if err != nil {
		return nil, err
	}
	s.users.Store(snap)
	go s.watch(every)
	return s, nil
}

// OnReloadError sets the function told when a changed file could not be
// used; the store keeps the last good users. It is called from the
// watching goroutine, once per change of the file.
func (s *Store) OnReloadError(fn func(error)) {
	if fn == nil {
		s.onError.Store(nil)
		return
	}
	s.onError.Store(&fn)
}

// Close stops watching the file. Authenticate goes on working with the
// users last read.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

// Authenticate checks a username (case-insensitively) and password. It
// follows the caddyauth contract: ok=false with a nil error for a bad
// username or password, an error for a failure or for a disabled account
// (an *AccountDisabledError, returned only with the right password). An
// unknown username costs the same time as a known one.
func (s *Store) Authenticate(ctx context.Context, username, password string) (groups.Identity, bool, error) {
	if err := ctx.Err(); err != nil {
		return groups.Identity{}, false, fmt.Errorf("local: %w", err)
	}
	snap := s.users.Load()
	e := snap.users[strings.ToLower(username)]
	if e == nil {
		snap.dummy.verify(password)
		return groups.Identity{}, false, nil
	}
	if _, ok := e.hash.(unusable); ok {
		snap.dummy.verify(password)
		return groups.Identity{}, false, nil
	}
	if k := snap.verified.sum(e.id.ID, password); !snap.verified.has(k) {
		if !e.hash.verify(password) {
			return groups.Identity{}, false, nil
		}
		snap.verified.add(k)
	}
	if e.disabled {
		return groups.Identity{}, false, &AccountDisabledError{Username: e.id.ID}
	}
	id := e.id
	id.Groups = append([]groups.Group(nil), e.id.Groups...)
	return id, true, nil
}

// load reads and compiles the file; prev is the snapshot in use.
func (s *Store) load(prev *snapshot) (*snapshot, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	f, err := parseFile(s.path, data)
	if err != nil {
		return nil, err
	}
	snap, err := f.compile(prev, true)
	if err != nil {
		return nil, fmt.Errorf("users file %s: %w", s.path, err)
	}
	snap.stat = statOf(fi)
	return snap, nil
}

// compile validates f and builds what Authenticate reads; without dummy,
// only validates. prev, the snapshot in use, lends its dummy hash when the
// most common kind is the same, so a reload need not make a bcrypt hash.
func (f *File) compile(prev *snapshot, dummy bool) (*snapshot, error) {
	snap := &snapshot{users: make(map[string]*entry, len(f.Users)), verified: newVerified()}
	kinds := map[string]int{}
	var first []verifier // first verifier of each kind, in file order
	for i := range f.Users {
		u := &f.Users[i]
		v, err := u.check()
		if err != nil {
			return nil, err
		}
		key := strings.ToLower(u.Username)
		if _, dup := snap.users[key]; dup {
			return nil, fmt.Errorf("user %q: %w (usernames are matched case-insensitively)", u.Username, ErrUserExists)
		}
		gs := make([]groups.Group, len(u.Groups))
		for j, g := range u.Groups {
			gs[j] = groups.Group{Name: g}
		}
		snap.users[key] = &entry{
			id: groups.Identity{
				ID:         key,
				Email:      u.Email,
				Name:       strings.TrimSpace(u.GivenName + " " + u.FamilyName),
				GivenName:  u.GivenName,
				FamilyName: u.FamilyName,
				Groups:     gs,
			},
			hash:     v,
			disabled: u.Disabled,
		}
		if k := v.kind(); k != "" {
			if kinds[k] == 0 {
				first = append(first, v)
			}
			kinds[k]++
		}
	}
	if !dummy {
		return snap, nil
	}
	// The dummy is of the most common kind (the first seen on a tie), so
	// that an unknown name costs what most known names cost.
	var model verifier
	for _, v := range first {
		if model == nil || kinds[v.kind()] > kinds[model.kind()] {
			model = v
		}
	}
	if model == nil {
		model = bcryptHash{cost: defaultBcrypt}
	}
	if prev != nil && prev.dummy != nil && prev.dummy.kind() == model.kind() {
		snap.dummy = prev.dummy
		return snap, nil
	}
	d, err := model.dummy()
	if err != nil {
		return nil, err
	}
	snap.dummy = d
	return snap, nil
}

// watch polls the file until Close. A changed file that reads well is used
// at once; one that does not is reported only if it is still the same at
// the next poll, so that catching an editor half-way through writing in
// place does not raise a false alarm.
func (s *Store) watch(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	var (
		pending  *fileStat // a failed reading not yet reported
		reported *fileStat // the state of the file last reported as failed
	)
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		cur := s.users.Load()
		var now fileStat
		fi, err := os.Stat(s.path)
		if err == nil {
			now = statOf(fi)
			if now.same(cur.stat) {
				pending, reported = nil, nil
				continue
			}
		}
		if reported != nil && now.same(*reported) {
			continue
		}
		var snap *snapshot
		if err == nil {
			snap, err = s.load(cur)
		} else {
			err = fmt.Errorf("users file: %w", err)
		}
		if err == nil {
			pending, reported = nil, nil
			s.users.Store(snap)
			continue
		}
		if pending == nil || !now.same(*pending) {
			pending = &now
			continue
		}
		pending, reported = nil, &now
		if fn := s.onError.Load(); fn != nil {
			(*fn)(err)
		}
	}
}
