package sync

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Signature is a commit's author or committer.
type Signature struct {
	Name  string
	Email string
	When  time.Time
}

// Snapshot is an immutable, fully in-memory copy of one commit of the watched
// branch: its metadata and its file tree. It is safe for concurrent use.
type Snapshot struct {
	// Commit is the commit SHA.
	Commit string
	// Branch is the branch the commit was the head of.
	Branch string
	// Author and Committer of the commit.
	Author, Committer Signature
	// Message is the full commit message.
	Message string
	// Time is the commit (committer) time.
	Time time.Time
	// Previous is the commit of the snapshot this one replaced ("" for the
	// first snapshot a Source takes).
	Previous string
	// ChangedPaths are the files added, modified or deleted since Previous,
	// sorted. For the first snapshot it lists every file. It is computed from
	// the two trees, so it is right after a force push too.
	ChangedPaths []string
	// Signer describes the key that signed the commit when signature
	// verification is on ("" otherwise).
	Signer string

	files map[string]fileEntry
	dirs  map[string][]fs.DirEntry
}

type fileEntry struct {
	hash string
	mode filemode.FileMode
	data []byte
}

// errTooLarge marks a commit whose files exceed the snapshot size limit.
var errTooLarge = errors.New("snapshot too large")

// newSnapshot reads every regular file and symlink of commit c into memory,
// refusing more than maxBytes in total (0: no limit). Submodule entries are
// skipped: a snapshot holds only this repository.
func newSnapshot(branch string, c *object.Commit, prev *Snapshot, maxBytes int64) (*Snapshot, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", c.Hash, err)
	}
	files := make(map[string]fileEntry)
	reuse := map[string][]byte{}
	if prev != nil {
		for _, e := range prev.files {
			reuse[e.hash] = e.data
		}
	}
	var total int64
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	for {
		name, entry, err := walker.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("walk tree of %s: %w", c.Hash, err)
		}
		if !entry.Mode.IsFile() {
			continue // directories are implied; submodules are skipped
		}
		f, err := tree.TreeEntryFile(&entry)
		if err != nil {
			return nil, fmt.Errorf("read %s at %s: %w", name, c.Hash, err)
		}
		total += f.Size
		if maxBytes > 0 && total > maxBytes {
			return nil, fmt.Errorf("%w: the files of commit %s exceed %d bytes (at %s); raise the limit or move large files out of the repository", errTooLarge, c.Hash, maxBytes, name)
		}
		if data, ok := reuse[entry.Hash.String()]; ok {
			// Same blob as in the previous snapshot: share its bytes
			// (both are immutable) instead of holding a second copy.
			files[name] = fileEntry{hash: entry.Hash.String(), mode: entry.Mode, data: data}
			continue
		}
		r, err := f.Reader()
		if err != nil {
			return nil, fmt.Errorf("read %s at %s: %w", name, c.Hash, err)
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s at %s: %w", name, c.Hash, err)
		}
		files[name] = fileEntry{hash: entry.Hash.String(), mode: entry.Mode, data: data}
	}
	s := &Snapshot{
		Commit:    c.Hash.String(),
		Branch:    branch,
		Author:    Signature{Name: c.Author.Name, Email: c.Author.Email, When: c.Author.When},
		Committer: Signature{Name: c.Committer.Name, Email: c.Committer.Email, When: c.Committer.When},
		Message:   c.Message,
		Time:      c.Committer.When,
		files:     files,
	}
	s.dirs = buildDirs(files)
	if prev != nil {
		s.Previous = prev.Commit
		s.ChangedPaths = changedPaths(prev.files, files)
	} else {
		s.ChangedPaths = s.Paths()
	}
	return s, nil
}

// changedPaths lists paths whose blob or mode differs between a and b.
func changedPaths(a, b map[string]fileEntry) []string {
	var out []string
	for p, ea := range a {
		if eb, ok := b[p]; !ok || eb.hash != ea.hash || eb.mode != ea.mode {
			out = append(out, p)
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Paths lists every file in the snapshot, sorted, slash-separated.
func (s *Snapshot) Paths() []string {
	out := make([]string, 0, len(s.files))
	for p := range s.files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// ReadFile returns a copy of the content of the file at name.
func (s *Snapshot) ReadFile(name string) ([]byte, error) {
	e, ok := s.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return bytes.Clone(e.data), nil
}

// BlobHash returns the Git blob hash of the file at name; two files with the
// same hash have the same content, in this snapshot or any other.
func (s *Snapshot) BlobHash(name string) (string, bool) {
	e, ok := s.files[name]
	return e.hash, ok
}

// Walk calls fn for every file under dir ("." for all) in lexical order,
// with its path and blob hash. An error from fn stops the walk.
func (s *Snapshot) Walk(dir string, fn func(name, blobHash string) error) error {
	dir = path.Clean(dir)
	for _, p := range s.Paths() {
		if dir != "." && p != dir && !strings.HasPrefix(p, dir+"/") {
			continue
		}
		if err := fn(p, s.files[p].hash); err != nil {
			return err
		}
	}
	return nil
}

// FS returns the snapshot's tree as a read-only file system. It implements
// fs.ReadFileFS, fs.ReadDirFS and fs.StatFS; symlinks are plain files whose
// content is the link target.
func (s *Snapshot) FS() fs.FS { return snapFS{s} }

// buildDirs indexes the directory entries implied by the file paths.
func buildDirs(files map[string]fileEntry) map[string][]fs.DirEntry {
	children := map[string]map[string]fs.DirEntry{".": {}}
	for p, e := range files {
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		if dir == "" {
			dir = "."
		}
		addChild(children, dir, fileInfo{name: base, size: int64(len(e.data)), mode: fileMode(e.mode)})
		for dir != "." {
			parent, name := path.Split(dir)
			parent = strings.TrimSuffix(parent, "/")
			if parent == "" {
				parent = "."
			}
			addChild(children, parent, fileInfo{name: name, mode: fs.ModeDir | 0o755})
			dir = parent
		}
	}
	out := make(map[string][]fs.DirEntry, len(children))
	for dir, m := range children {
		list := make([]fs.DirEntry, 0, len(m))
		for _, e := range m {
			list = append(list, e)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Name() < list[j].Name() })
		out[dir] = list
	}
	return out
}

func addChild(children map[string]map[string]fs.DirEntry, dir string, fi fileInfo) {
	m, ok := children[dir]
	if !ok {
		m = map[string]fs.DirEntry{}
		children[dir] = m
	}
	m[fi.name] = fs.FileInfoToDirEntry(fi)
}

func fileMode(m filemode.FileMode) fs.FileMode {
	switch m {
	case filemode.Executable:
		return 0o755
	case filemode.Symlink:
		return 0o644 // exposed as a plain file holding the target
	default:
		return 0o644
	}
}

type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (fi fileInfo) Name() string       { return fi.name }
func (fi fileInfo) Size() int64        { return fi.size }
func (fi fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi fileInfo) ModTime() time.Time { return time.Time{} }
func (fi fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi fileInfo) Sys() any           { return nil }

type snapFS struct{ s *Snapshot }

func (f snapFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if e, ok := f.s.files[name]; ok {
		return &openFile{Reader: bytes.NewReader(e.data), info: fileInfo{name: path.Base(name), size: int64(len(e.data)), mode: fileMode(e.mode)}}, nil
	}
	if entries, ok := f.s.dirs[name]; ok {
		return &openDir{info: fileInfo{name: path.Base(name), mode: fs.ModeDir | 0o755}, entries: entries}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func (f snapFS) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrInvalid}
	}
	return f.s.ReadFile(name)
}

func (f snapFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	entries, ok := f.s.dirs[name]
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	return append([]fs.DirEntry(nil), entries...), nil
}

func (f snapFS) Stat(name string) (fs.FileInfo, error) {
	file, err := f.Open(name)
	if err != nil {
		return nil, err
	}
	return file.Stat()
}

type openFile struct {
	*bytes.Reader
	info fileInfo
}

func (o *openFile) Stat() (fs.FileInfo, error) { return o.info, nil }
func (o *openFile) Close() error               { return nil }

type openDir struct {
	info    fileInfo
	entries []fs.DirEntry
	pos     int
}

func (d *openDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *openDir) Close() error               { return nil }
func (d *openDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}

func (d *openDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.pos:]
	if n <= 0 {
		d.pos = len(d.entries)
		return append([]fs.DirEntry(nil), rest...), nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	d.pos += n
	return append([]fs.DirEntry(nil), rest[:n]...), nil
}
