package artifact

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultCacheMaxBytes bounds the jar cache (2 GiB).
const DefaultCacheMaxBytes = 2 << 30

// maxIndex bounds the URI → digest index of immutable URIs.
const maxIndex = 4096

// Cache keeps fetched jars on disk as <sha256>.jar, at most maxBytes in
// all: the least recently used jars not held by a running fetch or upload
// are removed first. It survives restarts (the files are the cache).
type Cache struct {
	dir      string
	maxBytes int64

	mu    sync.Mutex
	held  map[string]int
	index map[string]string
}

// NewCache opens (creating) a cache directory bounded to maxBytes
// (DefaultCacheMaxBytes when ≤ 0), removing leftovers of interrupted fetches.
func NewCache(dir string, maxBytes int64) (*Cache, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheMaxBytes
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("jar cache: %w", err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".fetch-*")); len(tmp) > 0 {
		for _, t := range tmp {
			os.Remove(t)
		}
	}
	return &Cache{dir: dir, maxBytes: maxBytes, held: map[string]int{}, index: map[string]string{}}, nil
}

func (c *Cache) path(digest string) string { return filepath.Join(c.dir, digest+".jar") }

// Hold returns the cached jar of a digest and marks it used, holding it
// until release is called.
func (c *Cache) Hold(digest string) (string, int64, func(), bool) {
	if !isDigest(digest) {
		return "", 0, nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.path(digest)
	st, err := os.Stat(p)
	if err != nil {
		return "", 0, nil, false
	}
	now := time.Now()
	os.Chtimes(p, now, now)
	return p, st.Size(), c.holder(digest), true
}

// holder takes one hold on digest (c.mu held) and returns its release.
func (c *Cache) holder(digest string) func() {
	c.held[digest]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.held[digest]--; c.held[digest] <= 0 {
				delete(c.held, digest)
			}
		})
	}
}

// Add moves a fetched file into the cache under its digest, holds it, and
// evicts least recently used jars beyond the bound.
func (c *Cache) Add(tmp, digest string, size int64) (string, func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.path(digest)
	if err := os.Rename(tmp, p); err != nil {
		return "", nil, fmt.Errorf("jar cache: %w", err)
	}
	now := time.Now()
	os.Chtimes(p, now, now)
	release := c.holder(digest)
	c.evict()
	return p, release, nil
}

// Lookup returns the digest an immutable URI was fetched as, "" if unknown.
func (c *Cache) Lookup(uri string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.index[uri]
}

// Remember records the digest of an immutable URI.
func (c *Cache) Remember(uri, digest string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.index) >= maxIndex {
		clear(c.index)
	}
	c.index[uri] = digest
}

// evict removes the least recently used jars not held until the cache is
// within its bound (c.mu held).
func (c *Cache) evict() {
	type entry struct {
		digest string
		size   int64
		used   time.Time
	}
	var all []entry
	var total int64
	filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			if d != nil && d.IsDir() && p != c.dir {
				return filepath.SkipDir
			}
			return nil
		}
		digest, ok := strings.CutSuffix(d.Name(), ".jar")
		if !ok || !isDigest(digest) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		all = append(all, entry{digest, info.Size(), info.ModTime()})
		total += info.Size()
		return nil
	})
	sort.Slice(all, func(i, j int) bool { return all[i].used.Before(all[j].used) })
	for _, e := range all {
		if total <= c.maxBytes {
			return
		}
		if c.held[e.digest] > 0 {
			continue
		}
		if err := os.Remove(c.path(e.digest)); err == nil || errors.Is(err, fs.ErrNotExist) {
			total -= e.size
			for u, d := range c.index {
				if d == e.digest {
					delete(c.index, u)
				}
			}
		}
	}
}
