package daemon

import (
	"fmt"
	"os"
	"strings"
	gosync "sync"
	"time"

	"github.com/flink-gitops/flink-gitops/config"
	gitsync "github.com/flink-gitops/flink-gitops/sync"
)

// secretFiles reads the webhook secret files named by the running
// configuration, again only when a file's path, modification time or size
// changed: a reloaded config or a rotated Secret applies to the next
// delivery without a restart.
type secretFiles struct {
	current func() config.WebhookSecrets

	mu    gosync.Mutex
	cache map[string]secretFile
}

type secretFile struct {
	mod   time.Time
	size  int64
	value []byte
}

func newSecretFiles(current func() config.WebhookSecrets) *secretFiles {
	return &secretFiles{current: current, cache: map[string]secretFile{}}
}

// Secrets is a gitsync.WebhookOptions.Secrets function.
func (s *secretFiles) Secrets() (gitsync.WebhookSecrets, error) {
	c := s.current()
	var out gitsync.WebhookSecrets
	for _, f := range []struct {
		key, path string
		dst       *[]byte
	}{
		{"webhook.secrets.githubFile", c.GitHubFile, &out.GitHub},
		{"webhook.secrets.giteaFile", c.GiteaFile, &out.Gitea},
		{"webhook.secrets.gitlabFile", c.GitLabFile, &out.GitLab},
		{"webhook.secrets.genericFile", c.GenericFile, &out.Generic},
	} {
		if f.path == "" {
			continue
		}
		v, err := s.read(f.path)
		if err != nil {
			return gitsync.WebhookSecrets{}, fmt.Errorf("%s: %w", f.key, err)
		}
		*f.dst = v
	}
	return out, nil
}

func (s *secretFiles) read(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cache[path]; ok && c.mod.Equal(fi.ModTime()) && c.size == fi.Size() {
		return c.value, nil
	}
	if fi.Size() > 4096 {
		return nil, fmt.Errorf("%s is %d bytes; a webhook secret file holds one secret of at most 4096 bytes", path, fi.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v := []byte(strings.TrimSpace(string(b)))
	if len(v) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	s.cache[path] = secretFile{mod: fi.ModTime(), size: fi.Size(), value: v}
	return v, nil
}
