package config

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://user:hunter2@git.example.com/org/repo.git", "https://***@git.example.com/org/repo.git"},
		{"https://user:hunt@er2@git.example.com/x", "https://***@git.example.com/x"},
		{"https://tok%zz:hunter2@git.example.com/x", "https://***@git.example.com/x"},
		{"https://git.example.com/a@b", "https://git.example.com/a@b"},
		{"git@github.com:org/repo.git", "git@github.com:org/repo.git"},
		{"http://a:hunter2@[::1/x", "http://***@[::1/x"},
		{"", ""},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestUnparseableURLsAreNotPrintedWithPasswords: a git.url or
// pullRequests.apiURL that fails to parse is reported without its
// credentials.
func TestUnparseableURLsAreNotPrintedWithPasswords(t *testing.T) {
	dir := t.TempDir()
	cfg := `git:
  url: "https://user:hunter2@git.example.com:port/org/repo.git"
  entryPoints: [overlays/prod]
kubernetes:
  allowedNamespaces: [default]
pullRequests:
  enabled: true
  provider: gitea
  owner: o
  repository: r
  tokenFile: /dev/null
  apiURL: "https://bot:hunter2@gitea.example.com:bad/"
`
	path := writeFile(t, dir, "config.yaml", cfg)
	_, err := Load(Sources{File: path})
	if err == nil {
		t.Fatal("bad URLs accepted")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error prints a password:\n%v", err)
	}
	for _, want := range []string{"git.url", "pullRequests.apiURL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s:\n%v", want, err)
		}
	}
}
