package daemon

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/config"
	gitsync "github.com/flink-gitops/flink-gitops/sync"
)

func hookSign(key, body string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// TestWebhookConfigIsLive: webhook.secrets.* and webhook.maxBodyBytes,
// documented live, apply to the next delivery after a config reload, and a
// rotated secret file applies without any reload.
func TestWebhookConfigIsLive(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oldKey := write("github-old", "old-key\n")
	newKey := write("github-new", "new-key\n")
	cfgText := func(keyFile string, maxBody int) string {
		return fmt.Sprintf(`git:
  url: https://git.example.com/platform/flink.git
  entryPoints: [overlays/prod]
kubernetes:
  allowedNamespaces: [default]
webhook:
  listen: "127.0.0.1:0"
  maxBodyBytes: %d
  secrets:
    githubFile: %s
`, maxBody, keyFile)
	}
	cfgPath := write("config.yaml", cfgText(oldKey, 1<<20))
	src := config.Sources{File: cfgPath}
	cfg, err := config.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	store := config.NewStore(cfg)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	secrets := newSecretFiles(func() config.WebhookSecrets { return store.Current().Webhook.Secrets })
	h, err := gitsync.NewWebhookHandler(gitsync.WebhookOptions{Secrets: secrets.Secrets, MaxBodyBytes: cfg.Webhook.MaxBodyBytes, Logger: log}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{cfg: store, webhook: h, limit: newLimiter(1), renders: make(chan struct{}, 1)}
	store.Subscribe(d.applyConfig)

	n := 0
	deliver := func(key string, pad int) int {
		n++
		body := fmt.Sprintf(`{"ref":"refs/heads/main","n":%d,"pad":"%s"}`, n, strings.Repeat("x", pad))
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", hookSign(key, body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if c := deliver("old-key", 2000); c != http.StatusAccepted {
		t.Fatalf("old key: %d", c)
	}
	// Reload: another secret file and a 1 KiB cap.
	if err := os.WriteFile(cfgPath, []byte(cfgText(newKey, 1024)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := store.Reload(src, log); err != nil {
		t.Fatal(err)
	}
	if c := deliver("old-key", 10); c != http.StatusForbidden {
		t.Fatalf("old key after the reload: %d, want 403", c)
	}
	if c := deliver("new-key", 10); c != http.StatusAccepted {
		t.Fatalf("new key after the reload: %d, want 202", c)
	}
	if c := deliver("new-key", 2000); c != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 KB body after maxBodyBytes became 1024: %d, want 413", c)
	}
	// The Secret is rotated in place (the file changes, the config not).
	// The size differs, so the change is seen whatever the clock's grain.
	if err := os.WriteFile(newKey, []byte("rotated-key-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(newKey, time.Now(), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if c := deliver("rotated-key-2", 10); c != http.StatusAccepted {
		t.Fatalf("rotated key: %d, want 202", c)
	}
	if c := deliver("new-key", 10); c != http.StatusForbidden {
		t.Fatalf("key before rotation: %d, want 403", c)
	}
}

func TestSecretFilesRefuseEmptyAndHuge(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	huge := filepath.Join(dir, "huge")
	_ = os.WriteFile(empty, []byte(" \n"), 0o600)
	_ = os.WriteFile(huge, make([]byte, 5000), 0o600)
	for _, tc := range []struct {
		s    config.WebhookSecrets
		want string
	}{
		{config.WebhookSecrets{GitLabFile: empty}, "webhook.secrets.gitlabFile: " + empty + " is empty"},
		{config.WebhookSecrets{GiteaFile: huge}, "webhook.secrets.giteaFile: " + huge + " is 5000 bytes"},
		{config.WebhookSecrets{GenericFile: filepath.Join(dir, "missing")}, "webhook.secrets.genericFile"},
	} {
		_, err := newSecretFiles(func() config.WebhookSecrets { return tc.s }).Secrets()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Secrets() = %v, want an error containing %q", err, tc.want)
		}
	}
}
