package config

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	gosync "sync"
	"testing"
	"time"
)

func reflectValue(c *Config) reflect.Value { return reflect.ValueOf(c).Elem() }

// withConcurrency returns the minimal config with reconcile.concurrency n.
func withConcurrency(n int) string {
	return fmt.Sprintf("%sreconcile:\n  concurrency: %d\n", minimal, n)
}

// startWatcher loads path, starts a watcher on it and returns the store and a
// channel that receives every accepted configuration.
func startWatcher(t *testing.T, path string) (*Store, <-chan *Config) {
	t.Helper()
	s, r, _ := startWatcherChecks(t, path)
	return s, r
}

// startWatcherChecks also returns a channel that receives after every
// content check the watcher makes.
func startWatcherChecks(t *testing.T, path string) (*Store, <-chan *Config, <-chan struct{}) {
	t.Helper()
	src := Sources{File: path}
	cfg, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore(cfg)
	reloaded := make(chan *Config, 16)
	store.Subscribe(func(_, cur *Config) { reloaded <- cur })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := NewWatcher(store, src, log)
	w.Debounce = 50 * time.Millisecond
	w.Recheck = time.Hour // events only: the fallback must not hide a lost watch
	checks := make(chan struct{}, 64)
	w.afterCheck = func() {
		select {
		case checks <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-w.armed
	return store, reloaded, checks
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func expectConcurrency(t *testing.T, reloaded <-chan *Config, n int) {
	t.Helper()
	select {
	case c := <-reloaded:
		if c.Reconcile.Concurrency != n {
			t.Fatalf("reloaded concurrency = %d, want %d", c.Reconcile.Concurrency, n)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no reload to concurrency %d within 10s", n)
	}
}

func TestReloadInPlaceWrite(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "config.yaml", withConcurrency(2))
	store, reloaded := startWatcher(t, path)
	// Truncate and write the same inode, as `cat > file` or an editor without backup does.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(withConcurrency(7)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	expectConcurrency(t, reloaded, 7)
	if got := store.Current().Reconcile.Concurrency; got != 7 {
		t.Fatalf("Current().Reconcile.Concurrency = %d", got)
	}
}

func TestReloadRenameOver(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "config.yaml", withConcurrency(2))
	_, reloaded := startWatcher(t, path)
	// vim/emacs style: write a new file, rename it over the old one.
	for i, n := range []int{3, 9} {
		tmp := writeFile(t, dir, fmt.Sprintf(".config.yaml.swp%d", i), withConcurrency(n))
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		expectConcurrency(t, reloaded, n)
	}
}

// TestReloadConfigMapVolume replays what the kubelet does to a ConfigMap
// volume: the file is a symlink into ..data, and an update swaps ..data.
func TestReloadConfigMapVolume(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mkVersion := func(name string, n int) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name), "config.yaml", withConcurrency(n))
	}
	mkVersion("..2026_11_28_01", 2)
	if err := os.Symlink("..2026_11_28_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.Symlink("..data/config.yaml", path); err != nil {
		t.Fatal(err)
	}
	_, reloaded := startWatcher(t, path)

	mkVersion("..2026_11_28_02", 5)
	if err := os.Symlink("..2026_11_28_02", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..2026_11_28_01")); err != nil {
		t.Fatal(err)
	}
	expectConcurrency(t, reloaded, 5)
}

func TestReloadRejectsInvalidThenAcceptsFix(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "config.yaml", withConcurrency(2))
	store, reloaded := startWatcher(t, path)

	if err := os.WriteFile(path, []byte(minimal+"reconcile:\n  concurrency: -1\n  typo: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return store.Status().Failures == 1 })
	st := store.Status()
	if st.LastError == nil || st.LastErrorTime.IsZero() {
		t.Fatalf("rejected reload not recorded: %+v", st)
	}
	for _, want := range []string{"reconcile.typo: unknown key"} {
		if !strings.Contains(st.LastError.Error(), want) {
			t.Errorf("last error %q does not name %q", st.LastError, want)
		}
	}
	if got := store.Current().Reconcile.Concurrency; got != 2 {
		t.Fatalf("running config changed by an invalid edit: concurrency %d", got)
	}

	if err := os.WriteFile(path, []byte(withConcurrency(4)), 0o644); err != nil {
		t.Fatal(err)
	}
	expectConcurrency(t, reloaded, 4)
	if st := store.Status(); st.LastError != nil || st.Reloads != 1 || st.Failures != 1 {
		t.Fatalf("status after fix: %+v", st)
	}
}

func TestReloadAfterFileDisappearsAndReturns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "config.yaml", withConcurrency(2))
	store, reloaded, checks := startWatcherChecks(t, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	select { // the removal's event leads to a check that finds no file
	case <-checks:
	case <-time.After(10 * time.Second):
		t.Fatal("no check after the file was removed")
	}
	if got := store.Current().Reconcile.Concurrency; got != 2 {
		t.Fatalf("a missing file changed the running config: %d", got)
	}
	writeFile(t, dir, "config.yaml", withConcurrency(6))
	expectConcurrency(t, reloaded, 6)
}

func TestReloadAfterDirectoryReplaced(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "conf")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, dir, "config.yaml", withConcurrency(2))
	_, reloaded := startWatcher(t, path)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "config.yaml", withConcurrency(8))
	expectConcurrency(t, reloaded, 8)
}

func TestRestartOnlyKeysKeepRunningValue(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "config.yaml", minimal)
	store, reloaded := startWatcher(t, path)
	if err := os.WriteFile(path, []byte(minimal+"server:\n  listen: ':9999'\nlog:\n  level: debug\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-reloaded:
		if c.Server.Listen != ":8080" {
			t.Errorf("server.listen changed live to %q", c.Server.Listen)
		}
		if c.Log.Level != "debug" {
			t.Errorf("log.level did not apply live: %q", c.Log.Level)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reload")
	}
	if got := store.Status().PendingRestart; len(got) != 1 || got[0] != "server.listen" {
		t.Errorf("PendingRestart = %v, want [server.listen]", got)
	}
}

func TestLogLevelFollowsReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "config.yaml", minimal)
	cfg, err := Load(Sources{File: path})
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore(cfg)
	var level slog.LevelVar
	log := NewLogger(io.Discard, cfg.Log, &level)
	FollowLogLevel(store, &level)
	if log.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("debug enabled at info level")
	}
	writeFile(t, dir, "config.yaml", minimal+"log:\n  level: debug\n")
	if err := store.Reload(Sources{File: path}, log); err != nil {
		t.Fatal(err)
	}
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("debug not enabled after reload")
	}
}

// TestConcurrentReadersDuringSwaps is meant for -race: readers never see a
// torn or half-built configuration while reloads swap it.
func TestConcurrentReadersDuringSwaps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "config.yaml", withConcurrency(1))
	cfg, err := Load(Sources{File: path})
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore(cfg)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var seen gosync.Map
	store.Subscribe(func(old, cur *Config) { seen.Store(cur.Reconcile.Concurrency, true) })

	stop := make(chan struct{})
	var wg gosync.WaitGroup
	for r := 0; r < 8; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := store.Current()
				// Every value of concurrency written below pairs with a resync
				// interval of that many seconds; a torn read breaks the pair.
				if c.Reconcile.Concurrency > 1 && c.Reconcile.ResyncInterval != time.Duration(c.Reconcile.Concurrency)*time.Second {
					t.Errorf("torn config: concurrency %d, resync %s", c.Reconcile.Concurrency, c.Reconcile.ResyncInterval)
					return
				}
				_ = len(c.Git.EntryPoints)
			}
		}()
	}
	for n := 2; n <= 40; n++ {
		writeFile(t, dir, "config.yaml", fmt.Sprintf("%sreconcile:\n  concurrency: %d\n  resyncInterval: %ds\n", minimal, n, n))
		if err := store.Reload(Sources{File: path}, log); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if got := store.Current().Reconcile.Concurrency; got != 40 {
		t.Fatalf("final concurrency %d", got)
	}
	if store.Status().Reloads != 39 {
		t.Fatalf("reloads = %d", store.Status().Reloads)
	}
}
