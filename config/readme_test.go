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

// TestREADMELiveAndRestartMatchRestartOnly: a key the README's reference
// marks "# restart" (itself or through a parent) is in RestartOnly, and
// one marked "# live" is not, so the documentation says what a reload
// really does.
func TestREADMELiveAndRestartMatchRestartOnly(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	s = s[strings.Index(s, "<!-- config-reference"):]
	start := strings.Index(s, "```yaml\n") + 8
	block := s[start : start+strings.Index(s[start:], "```")]
	restart := map[string]bool{}
	for _, k := range RestartOnly {
		restart[k] = true
	}
	isRestart := func(key string) bool {
		for p := key; ; {
			if restart[p] {
				return true
			}
			i := strings.LastIndex(p, ".")
			if i < 0 {
				return false
			}
			p = p[:i]
		}
	}
	var stack []string // key path by indentation (two spaces a level)
	checked := 0
	for _, line := range strings.Split(block, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "- ") {
			continue
		}
		level := (len(line) - len(trimmed)) / 2
		name, _, ok := strings.Cut(trimmed, ":")
		if !ok {
			continue
		}
		if level > len(stack) {
			continue // inside a free-form map
		}
		stack = append(stack[:level], name)
		key := strings.Join(stack, ".")
		_, comment, ok := strings.Cut(trimmed, "# ")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(comment, "restart"):
			checked++
			if !isRestart(key) {
				t.Errorf("README marks %s restart, but it is not in RestartOnly", key)
			}
		case strings.HasPrefix(comment, "live"):
			checked++
			if isRestart(key) {
				t.Errorf("README marks %s live, but RestartOnly keeps its running value", key)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d keys checked: the parser no longer understands the reference", checked)
	}
}
