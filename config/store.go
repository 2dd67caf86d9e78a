package config

import (
	"log/slog"
	"reflect"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"
)

// Store holds the running configuration. Readers call Current and must treat
// the returned value as read-only; a reload swaps in a fresh value atomically
// and tells subscribers, so live settings really apply.
type Store struct {
	cur atomic.Pointer[Config]

	mu     gosync.Mutex
	subs   map[int]func(old, cur *Config)
	nextID int
	status ReloadStatus
}

// ReloadStatus says how reloading has gone, for logs and metrics.
type ReloadStatus struct {
	// Reloads counts accepted reloads, Failures rejected ones.
	Reloads, Failures int
	// LastReload is when a reload was last accepted.
	LastReload time.Time
	// LastError is the last rejection (nil once a later reload succeeds)
	// and LastErrorTime when it happened.
	LastError     error
	LastErrorTime time.Time
	// PendingRestart lists keys changed in the file whose new value needs a
	// restart; the running value is kept until then.
	PendingRestart []string
}

// NewStore returns a store holding c.
func NewStore(c *Config) *Store {
	s := &Store{subs: map[int]func(old, cur *Config){}}
	s.cur.Store(c)
	return s
}

// Current returns the running configuration. Do not modify it.
func (s *Store) Current() *Config { return s.cur.Load() }

// Subscribe registers fn to be called, in the reloading goroutine, after each
// accepted reload. It returns a function that unsubscribes.
func (s *Store) Subscribe(fn func(old, cur *Config)) (unsubscribe func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextID
	s.nextID++
	s.subs[id] = fn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs, id)
	}
}

// Status returns a copy of the reload status.
func (s *Store) Status() ReloadStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.PendingRestart = append([]string(nil), st.PendingRestart...)
	return st
}

// Reload loads src and, if valid, swaps it in (keeping restart-only keys at
// their running values) and notifies subscribers. An invalid configuration
// leaves the running one in place and is recorded in Status.
func (s *Store) Reload(src Sources, log *slog.Logger) error {
	next, err := Load(src)
	s.mu.Lock()
	if err != nil {
		s.status.Failures++
		s.status.LastError = err
		s.status.LastErrorTime = time.Now()
		s.mu.Unlock()
		log.Error("config reload rejected; keeping the running configuration", "file", src.File, "err", err)
		return err
	}
	old := s.cur.Load()
	pending := keepRestartOnly(old, next)
	s.cur.Store(next)
	s.status.Reloads++
	s.status.LastReload = time.Now()
	s.status.LastError = nil
	s.status.PendingRestart = pending
	subs := make([]func(old, cur *Config), 0, len(s.subs))
	for _, fn := range s.subs {
		subs = append(subs, fn)
	}
	s.mu.Unlock()

	if len(pending) > 0 {
		log.Warn("config changed keys that apply only after a restart; keeping their running values", "keys", strings.Join(pending, ","))
	}
	log.Info("config reloaded", "file", src.File)
	for _, fn := range subs {
		fn(old, next)
	}
	return nil
}

// keepRestartOnly copies the running values of restart-only keys into next
// and returns the keys whose value the new file changes.
func keepRestartOnly(old, next *Config) []string {
	var changed []string
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(next).Elem()
	for _, key := range RestartOnly {
		of, nf := fieldByKey(ov, key), fieldByKey(nv, key)
		if !of.IsValid() || !nf.IsValid() {
			continue
		}
		if !reflect.DeepEqual(of.Interface(), nf.Interface()) {
			changed = append(changed, key)
			nf.Set(of)
		}
	}
	return changed
}

// fieldByKey finds the struct field a key path names, by koanf tags.
func fieldByKey(v reflect.Value, key string) reflect.Value {
	for _, part := range strings.Split(key, ".") {
		t := v.Type()
		found := false
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).Tag.Get("koanf") == part {
				v = v.Field(i)
				found = true
				break
			}
		}
		if !found {
			return reflect.Value{}
		}
	}
	return v
}
