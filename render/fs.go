package render

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
	gosync "sync"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// loadFS copies the snapshot's readable files into a kustomize in-memory
// filesystem rooted at "/". Files over maxSize are poisoned in t instead.
func loadFS(t *tree, maxSize int64) (filesys.FileSystem, error) {
	mem := filesys.MakeFsInMemory()
	paths := make([]string, 0, len(t.files))
	for p := range t.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		b, err := t.src.ReadFile(t.files[p])
		if err != nil {
			t.bad[p] = fmt.Sprintf("read %s: %v", p, err)
			delete(t.files, p)
			continue
		}
		if int64(len(b)) > maxSize {
			t.bad[p] = fmt.Sprintf("file %s is %d bytes, over the %d-byte limit for rendered files", p, len(b), maxSize)
			delete(t.files, p)
			continue
		}
		if err := mem.WriteFile("/"+p, b); err != nil {
			return nil, fmt.Errorf("load %s into the in-memory filesystem: %w", p, err)
		}
	}
	for p := range t.bad {
		// Make the parent directory exist so kustomize gets as far as
		// reading the file and sees our error.
		// (A directory kustomize cannot name stays missing: the precheck
		// has reported the file already.)
		_ = mem.MkdirAll("/" + path.Dir(p))
	}
	return mem, nil
}

// recordingFS wraps the in-memory filesystem for one build: it records every
// path the build looked at (for the render cache), answers poisoned paths
// with their error, and can substitute one file's contents (the entry
// point's kustomization, with origin annotations switched on).
type recordingFS struct {
	filesys.FileSystem
	// mu makes abandon final: once it returns, the build never touches the
	// shared in-memory filesystem or the tree again.
	mu        gosync.Mutex
	abandoned bool
	t         *tree
	override  map[string][]byte // absolute path -> contents
	seen      map[string]bool   // repo-relative paths; a trailing "/" marks a directory listing
}

func newRecordingFS(inner filesys.FileSystem, t *tree) *recordingFS {
	return &recordingFS{FileSystem: inner, t: t, override: map[string][]byte{}, seen: map[string]bool{}}
}

// errAbandoned answers every call of a build that was abandoned.
var errAbandoned = errors.New("build abandoned after its time limit")

// abandon makes every further call fail.
func (f *recordingFS) abandon() {
	f.mu.Lock()
	f.abandoned = true
	f.mu.Unlock()
}

// enter locks f for one call; ok is false once the build is abandoned.
func (f *recordingFS) enter() bool {
	f.mu.Lock()
	if f.abandoned {
		f.mu.Unlock()
		return false
	}
	return true
}

// rel turns an absolute in-memory path into a repository path ("" = root).
func rel(p string) string {
	p = filepath.ToSlash(filepath.Clean(p))
	return strings.TrimPrefix(strings.TrimPrefix(p, "/"), ".")
}

func (f *recordingFS) note(p string) string {
	r := rel(p)
	f.seen[r] = true
	return r
}

// errPoisoned is returned (wrapped) for paths the snapshot refuses to serve.
var errPoisoned = errors.New("refused")

func (f *recordingFS) poisoned(r string) error {
	if why, ok := f.t.bad[r]; ok {
		return fmt.Errorf("%s: %w", why, errPoisoned)
	}
	return nil
}

// ReadFile implements filesys.FileSystem.
func (f *recordingFS) ReadFile(p string) ([]byte, error) {
	if !f.enter() {
		return nil, errAbandoned
	}
	defer f.mu.Unlock()
	r := f.note(p)
	if err := f.poisoned(r); err != nil {
		return nil, err
	}
	if b, ok := f.override[filepath.Clean(p)]; ok {
		return b, nil
	}
	return f.FileSystem.ReadFile(p)
}

// Open implements filesys.FileSystem.
func (f *recordingFS) Open(p string) (filesys.File, error) {
	if !f.enter() {
		return nil, errAbandoned
	}
	defer f.mu.Unlock()
	r := f.note(p)
	if err := f.poisoned(r); err != nil {
		return nil, err
	}
	return f.FileSystem.Open(p)
}

// Exists implements filesys.FileSystem.
func (f *recordingFS) Exists(p string) bool {
	if !f.enter() {
		return false
	}
	defer f.mu.Unlock()
	r := f.note(p)
	if _, bad := f.t.bad[r]; bad {
		return true
	}
	return f.FileSystem.Exists(p)
}

// IsDir implements filesys.FileSystem.
func (f *recordingFS) IsDir(p string) bool {
	if !f.enter() {
		return false
	}
	defer f.mu.Unlock()
	f.note(p)
	return f.FileSystem.IsDir(p)
}

// CleanedAbs implements filesys.FileSystem.
func (f *recordingFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	if !f.enter() {
		return "", "", errAbandoned
	}
	defer f.mu.Unlock()
	f.note(p)
	return f.FileSystem.CleanedAbs(p)
}

// ReadDir implements filesys.FileSystem.
func (f *recordingFS) ReadDir(p string) ([]string, error) {
	if !f.enter() {
		return nil, errAbandoned
	}
	defer f.mu.Unlock()
	f.seen[rel(p)+"/"] = true
	return f.FileSystem.ReadDir(p)
}

// Glob implements filesys.FileSystem; it records the listing of the
// pattern's directory.
func (f *recordingFS) Glob(pattern string) ([]string, error) {
	if !f.enter() {
		return nil, errAbandoned
	}
	defer f.mu.Unlock()
	f.seen[rel(path.Dir(filepath.ToSlash(pattern)))+"/"] = true
	return f.FileSystem.Glob(pattern)
}

// Walk implements filesys.FileSystem; it records every directory listed.
func (f *recordingFS) Walk(p string, fn filepath.WalkFunc) error {
	return f.FileSystem.Walk(p, func(q string, info fs.FileInfo, err error) error {
		if !f.enter() {
			return errAbandoned
		}
		if err == nil && info.IsDir() {
			f.seen[rel(q)+"/"] = true
		} else {
			f.note(q)
		}
		f.mu.Unlock()
		return fn(q, info, err)
	})
}

// Write operations are refused: a build only reads the snapshot.

// Create implements filesys.FileSystem.
func (f *recordingFS) Create(p string) (filesys.File, error) { return nil, errReadOnly(p) }

// Mkdir implements filesys.FileSystem.
func (f *recordingFS) Mkdir(p string) error { return errReadOnly(p) }

// MkdirAll implements filesys.FileSystem.
func (f *recordingFS) MkdirAll(p string) error { return errReadOnly(p) }

// RemoveAll implements filesys.FileSystem.
func (f *recordingFS) RemoveAll(p string) error { return errReadOnly(p) }

// WriteFile implements filesys.FileSystem.
func (f *recordingFS) WriteFile(p string, _ []byte) error { return errReadOnly(p) }

func errReadOnly(p string) error {
	return fmt.Errorf("write %s: the snapshot is read-only during a build", p)
}
