package render

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"
)

// tree is the indexed snapshot: which paths are files (and their blob
// hashes), which are directories, and which are poisoned (a symlink leaving
// the repository, an oversized file, an unsafe path) with the reason.
type tree struct {
	src   Source
	files map[string]string   // path -> path whose contents it has (itself, or a symlink's target)
	hash  map[string]string   // path -> blob hash
	bad   map[string]string   // path -> why it cannot be read
	dirs  map[string][]string // dir ("" is the root) -> sorted child names
	// measures and urls cache, for one render, what the precheck found in
	// a file (see measureFile and urlsIn).
	measures map[string]measured
	urls     map[string][]urlHit
}

const maxLinkHops = 16

func newTree(src Source, maxSize int64) *tree {
	t := &tree{src: src, files: map[string]string{}, hash: map[string]string{}, bad: map[string]string{}, dirs: map[string][]string{"": nil},
		measures: map[string]measured{}, urls: map[string][]urlHit{}}
	sizer, _ := src.(SizeSource)
	for _, p := range src.Paths() {
		c, err := cleanRepoPath(p)
		if err != nil || c != p {
			// A snapshot cannot hold such a path legitimately; never load it.
			continue
		}
		if sizer != nil {
			if n, ok := sizer.Size(p); ok && n > maxSize {
				t.bad[p] = fmt.Sprintf("file %s is %d bytes, over the %d-byte limit for rendered files", p, n, maxSize)
				continue
			}
		}
		t.files[p] = p
	}
	if ls, ok := src.(SymlinkSource); ok {
		t.addLinks(ls.Symlinks())
	}
	for p := range t.files {
		if seg, ok := unloadableName(p); ok {
			t.bad[p] = fmt.Sprintf("path %s has the name %q, which kustomize cannot load (a file or directory name may hold only letters, digits and - _ . :)", p, seg)
			delete(t.files, p)
		}
	}
	for p := range t.files {
		t.addDirs(p)
	}
	for p := range t.bad {
		t.addDirs(p)
	}
	for d, kids := range t.dirs {
		sort.Strings(kids)
		t.dirs[d] = dedupSorted(kids)
	}
	return t
}

// unloadableName returns the first segment of p that kustomize's in-memory
// filesystem refuses to create (it allows only [a-zA-Z0-9-_.:] and no "..").
// Such a file must not fail the whole snapshot: it is poisoned, and only an
// entry point that reads it reports it.
func unloadableName(p string) (string, bool) {
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || strings.Contains(seg, "..") {
			return seg, true
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':') {
				return seg, true
			}
		}
	}
	return "", false
}

func dedupSorted(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func (t *tree) addDirs(p string) {
	for {
		dir, name := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		_, seen := t.dirs[dir]
		t.dirs[dir] = append(t.dirs[dir], name)
		if dir == "" || seen {
			return
		}
		p = dir
	}
}

// addLinks follows symlinks that stay inside the repository (to files or
// directories) and poisons the others.
func (t *tree) addLinks(links map[string]string) {
	names := make([]string, 0, len(links))
	for l := range links {
		names = append(names, l)
	}
	sort.Strings(names)
	// Directory prefixes of real files, to follow links to directories.
	realDirs := map[string]bool{}
	for p := range t.files {
		if _, isLink := links[p]; isLink {
			continue
		}
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			realDirs[d] = true
		}
	}
	for _, l := range names {
		// A Source may also list a link as a file (a Git snapshot stores its
		// target as the blob); the link wins.
		delete(t.files, l)
		if _, err := cleanRepoPath(l); err != nil {
			continue
		}
		target, err := resolveLink(l, links)
		if err != nil {
			t.bad[l] = err.Error()
			continue
		}
		switch {
		case t.files[target] != "":
			t.files[l] = t.files[target]
		case t.bad[target] != "":
			t.bad[l] = t.bad[target]
		case realDirs[target]:
			for p, real := range t.files {
				if strings.HasPrefix(p, target+"/") {
					t.files[l+p[len(target):]] = real
				}
			}
		default:
			t.bad[l] = fmt.Sprintf("symlink %s points to %s, which is not in the repository", l, links[l])
		}
	}
}

// resolveLink follows a chain of links and returns the repository path
// it ends at, or an error when a hop leaves the repository.
func resolveLink(l string, links map[string]string) (string, error) {
	cur := l
	for i := 0; i < maxLinkHops; i++ {
		target, ok := links[cur]
		if !ok {
			return cur, nil
		}
		if strings.HasPrefix(target, "/") {
			return "", fmt.Errorf("symlink %s points to the absolute path %s, outside the repository", l, target)
		}
		next := path.Join(path.Dir(cur), target)
		if next == ".." || strings.HasPrefix(next, "../") {
			return "", fmt.Errorf("symlink %s points to %s, outside the repository", l, links[l])
		}
		cur = next
	}
	return "", fmt.Errorf("symlink %s: too many levels of symbolic links", l)
}

// fingerprint identifies what a build saw at a path: a blob hash, a
// directory listing, a poisoned path, or nothing. Two snapshots with equal
// fingerprints for every path a build read give that build the same result.
func (t *tree) fingerprint(p string) string {
	if strings.HasSuffix(p, "/") { // a directory listing
		kids, ok := t.dirs[strings.TrimSuffix(p, "/")]
		if !ok {
			return "absent"
		}
		h := sha256.Sum256([]byte(strings.Join(kids, "\x00")))
		return "list:" + hex.EncodeToString(h[:8])
	}
	if real, ok := t.files[p]; ok {
		return "file:" + t.blobHash(real)
	}
	if why, ok := t.bad[p]; ok {
		return "bad:" + why
	}
	if _, ok := t.dirs[p]; ok {
		return "dir"
	}
	return "absent"
}

func (t *tree) blobHash(p string) string {
	if h, ok := t.hash[p]; ok {
		return h
	}
	h, _ := t.src.BlobHash(p)
	t.hash[p] = h
	return h
}

// isDir reports whether p ("" or "." is the root) is a directory.
func (t *tree) isDir(p string) bool {
	if p == "." {
		p = ""
	}
	_, ok := t.dirs[p]
	return ok
}

// isFile reports whether p is a readable or poisoned file.
func (t *tree) isFile(p string) bool {
	_, ok := t.files[p]
	_, bad := t.bad[p]
	return ok || bad
}
