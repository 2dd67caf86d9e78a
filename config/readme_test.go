package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEConfigReference keeps the README's config reference true: it
// must load and validate, and name every key.
func TestREADMEConfigReference(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "<!-- config-reference")
	if i < 0 {
		t.Fatal("README has no config-reference marker")
	}
	s = s[i:]
	start := strings.Index(s, "```yaml\n")
	end := strings.Index(s[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("no yaml block after the marker")
	}
	block := s[start+8 : start+8+end]
	path := writeFile(t, t.TempDir(), "readme.yaml", block)
	cfg, err := Load(Sources{File: path})
	if err != nil {
		t.Fatalf("README config reference does not load: %v", err)
	}
	// Defaults in the reference must be the real defaults.
	def := Default()
	if cfg.Git.PollInterval != def.Git.PollInterval || cfg.Reconcile != def.Reconcile || cfg.Status != def.Status || cfg.LeaderElection != def.LeaderElection {
		t.Errorf("README shows defaults that differ from Default()")
	}
	for _, k := range Keys() {
		leaf := k[strings.LastIndex(k, ".")+1:]
		if !strings.Contains(block, leaf+":") {
			t.Errorf("README config reference does not mention %s", k)
		}
	}
}
