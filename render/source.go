package render

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Source is a read-only snapshot of a repository: the input of a render.
// Paths are slash-separated and relative to the repository root. The sync
// package's Git snapshot satisfies it; DirSource adapts a working copy.
type Source interface {
	// Paths lists every regular file (not symlinks, not directories).
	Paths() []string
	// ReadFile returns a file's contents.
	ReadFile(path string) ([]byte, error)
	// BlobHash returns the file's Git blob hash (hex SHA-1 of
	// "blob <size>\x00<contents>"), false if the path is not a file.
	BlobHash(path string) (string, bool)
}

// SymlinkSource is implemented by a Source that holds symbolic links. Links
// whose target stays inside the repository are followed; any other link is
// an error naming the link when a build reads it.
type SymlinkSource interface {
	// Symlinks maps each link's path to its target as stored (relative to
	// the link's directory, or absolute).
	Symlinks() map[string]string
}

// SizeSource is implemented by a Source that knows file sizes without
// reading the file, so oversized files are never loaded.
type SizeSource interface {
	// Size returns the file's size in bytes.
	Size(path string) (int64, bool)
}

// GitBlobHash returns Git's blob hash of data.
func GitBlobHash(data []byte) string {
	h := sha1.New()
	h.Write([]byte("blob " + strconv.Itoa(len(data)) + "\x00"))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// DirSource is a Source over a directory on disk (a working copy). The .git
// directory is skipped. Contents are read when asked for, so the files a
// build never reads are never loaded.
type DirSource struct {
	root  string
	paths []string
	sizes map[string]int64
	links map[string]string
}

// NewDirSource indexes the files under root.
func NewDirSource(root string) (*DirSource, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("repository directory %s: %w", root, err)
	}
	d := &DirSource{root: abs, sizes: map[string]int64{}, links: map[string]string{}}
	err = filepath.WalkDir(abs, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(abs, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".":
			return nil
		case e.IsDir():
			if e.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		case e.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			d.links[rel] = filepath.ToSlash(target)
		case e.Type().IsRegular():
			info, err := e.Info()
			if err != nil {
				return err
			}
			d.paths = append(d.paths, rel)
			d.sizes[rel] = info.Size()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index repository directory %s: %w", root, err)
	}
	sort.Strings(d.paths)
	return d, nil
}

// Paths implements Source.
func (d *DirSource) Paths() []string { return d.paths }

// ReadFile implements Source.
func (d *DirSource) ReadFile(p string) ([]byte, error) {
	if _, ok := d.sizes[p]; !ok {
		return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
	}
	return os.ReadFile(filepath.Join(d.root, filepath.FromSlash(p)))
}

// BlobHash implements Source; it reads the file.
func (d *DirSource) BlobHash(p string) (string, bool) {
	b, err := d.ReadFile(p)
	if err != nil {
		return "", false
	}
	return GitBlobHash(b), true
}

// Size implements SizeSource.
func (d *DirSource) Size(p string) (int64, bool) {
	s, ok := d.sizes[p]
	return s, ok
}

// Symlinks implements SymlinkSource.
func (d *DirSource) Symlinks() map[string]string { return d.links }

// MapSource is an in-memory Source: path to contents. Useful in tests and
// for callers that already hold file contents.
type MapSource struct {
	Files map[string][]byte
	// Links maps symlink paths to their stored targets.
	Links map[string]string
}

// Paths implements Source.
func (m MapSource) Paths() []string {
	out := make([]string, 0, len(m.Files))
	for p := range m.Files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// ReadFile implements Source.
func (m MapSource) ReadFile(p string) ([]byte, error) {
	b, ok := m.Files[p]
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
	}
	return b, nil
}

// BlobHash implements Source.
func (m MapSource) BlobHash(p string) (string, bool) {
	b, ok := m.Files[p]
	if !ok {
		return "", false
	}
	return GitBlobHash(b), true
}

// Size implements SizeSource.
func (m MapSource) Size(p string) (int64, bool) {
	b, ok := m.Files[p]
	return int64(len(b)), ok
}

// Symlinks implements SymlinkSource.
func (m MapSource) Symlinks() map[string]string { return m.Links }

// cleanRepoPath checks that p is a clean relative path inside the
// repository and returns it cleaned.
func cleanRepoPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("empty path")
	}
	if strings.HasPrefix(p, "/") || filepath.IsAbs(p) || (len(p) > 1 && p[1] == ':') {
		return "", fmt.Errorf("absolute path %q: paths must be relative to the repository root", p)
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("path %q leaves the repository", p)
	}
	return c, nil
}
