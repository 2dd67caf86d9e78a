package config

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher reloads a Store whenever its configuration file changes.
//
// It watches the file's directory, not the file: editors that save by
// renaming a new file over the old one, and Kubernetes ConfigMap volumes that
// swap a "..data" symlink, replace the inode, which a watch on the file itself
// would lose. Any event in the directory starts a debounce timer; when it
// fires the file is read through its symlinks and reloaded only if its
// content changed. A slow periodic check covers events the kernel drops, and
// the watch is re-armed if the directory itself goes away and comes back.
type Watcher struct {
	// Store receives the reloads.
	Store *Store
	// Sources are reloaded as a whole; Sources.File is the watched file.
	Sources Sources
	// Log receives reload outcomes.
	Log *slog.Logger
	// Debounce is the quiet time after the last event before reloading.
	Debounce time.Duration
	// Recheck is the period of the fallback content check.
	Recheck time.Duration

	lastSum [sha256.Size]byte
	// armed is closed once the first watch is in place (tests wait on it).
	armed chan struct{}
	// afterCheck, if set, runs after every content check (tests use it).
	afterCheck func()
}

// NewWatcher returns a watcher with sensible timings. The content already
// loaded into store is taken as the baseline.
func NewWatcher(store *Store, src Sources, log *slog.Logger) *Watcher {
	w := &Watcher{Store: store, Sources: src, Log: log, Debounce: 250 * time.Millisecond, Recheck: 10 * time.Second, armed: make(chan struct{})}
	if b, err := os.ReadFile(src.File); err == nil {
		w.lastSum = sha256.Sum256(b)
	}
	return w
}

// Run watches until ctx is done.
func (w *Watcher) Run(ctx context.Context) error {
	if w.Sources.File == "" {
		return fmt.Errorf("config watcher: no file to watch")
	}
	abs, err := filepath.Abs(w.Sources.File)
	if err != nil {
		return fmt.Errorf("config watcher: %w", err)
	}
	dir := filepath.Dir(abs)

	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("config watcher: %w", err)
	}
	defer fw.Close()

	armed := w.arm(fw, dir)
	if w.armed != nil {
		close(w.armed)
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	recheck := time.NewTicker(w.Recheck)
	defer recheck.Stop()
	rearm := time.NewTicker(time.Second)
	defer rearm.Stop()

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if ev.Name == dir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				armed = false
			}
			debounce.Reset(w.Debounce)
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			w.Log.Warn("config watcher error; re-arming", "dir", dir, "err", err)
			armed = false
		case <-rearm.C:
			if !armed {
				if armed = w.arm(fw, dir); armed {
					debounce.Reset(w.Debounce)
				}
			}
		case <-recheck.C:
			w.check()
		case <-debounce.C:
			w.check()
		}
	}
}

// arm (re)adds the directory watch; false means it does not exist (yet).
func (w *Watcher) arm(fw *fsnotify.Watcher, dir string) bool {
	_ = fw.Remove(dir)
	if err := fw.Add(dir); err != nil {
		w.Log.Warn("cannot watch config directory; will retry", "dir", dir, "err", err)
		return false
	}
	return true
}

// reloadIfChanged reloads when the file's content differs from the last
// content seen. A missing file keeps the running configuration.
func (w *Watcher) reloadIfChanged() {
	b, err := os.ReadFile(w.Sources.File)
	if err != nil {
		if os.IsNotExist(err) && w.lastSum == ([sha256.Size]byte{}) {
			return
		}
		if os.IsNotExist(err) {
			w.Log.Warn("config file is missing; keeping the running configuration until it comes back", "file", w.Sources.File)
			w.lastSum = [sha256.Size]byte{}
			return
		}
		w.Log.Error("cannot read config file; keeping the running configuration", "file", w.Sources.File, "err", err)
		return
	}
	sum := sha256.Sum256(b)
	if bytes.Equal(sum[:], w.lastSum[:]) {
		return
	}
	w.lastSum = sum
	_ = w.Store.Reload(w.Sources, w.Log)
}

// check runs one content check and the test hook.
func (w *Watcher) check() {
	w.reloadIfChanged()
	if w.afterCheck != nil {
		w.afterCheck()
	}
}
