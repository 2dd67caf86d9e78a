package config

import (
	"strings"
	"testing"
	"time"
)

func TestPullRequestsValidation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	token := writeFile(t, dir, "token", "s3cret")
	cases := []struct {
		name, yaml, key, inMsg string
	}{
		{"provider", "pullRequests: {enabled: true, provider: gitlab, owner: o, repository: r, tokenFile: " + token + "}", "pullRequests.provider", `"gitlab" is not a supported forge`},
		{"gitea needs url", "pullRequests: {enabled: true, provider: gitea, owner: o, repository: r, tokenFile: " + token + "}", "pullRequests.apiURL", "is required for gitea"},
		{"bad url", "pullRequests: {enabled: true, apiURL: 'ftp://x', owner: o, repository: r, tokenFile: " + token + "}", "pullRequests.apiURL", "is not an http(s) URL"},
		{"owner", "pullRequests: {enabled: true, repository: r, tokenFile: " + token + "}", "pullRequests.owner", "is required"},
		{"repository", "pullRequests: {enabled: true, owner: o, tokenFile: " + token + "}", "pullRequests.repository", "is required"},
		{"token", "pullRequests: {enabled: true, owner: o, repository: r}", "pullRequests.tokenFile", "is required"},
		{"missing token file", "pullRequests: {tokenFile: /nonexistent/t}", "pullRequests.tokenFile", "cannot read"},
		{"poll", "pullRequests: {enabled: true, owner: o, repository: r, tokenFile: " + token + ", pollInterval: 1s}", "pullRequests.pollInterval", "is too short"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := writeFile(t, dir, "pr"+strings.Repeat("x", i)+".yaml", minimal+c.yaml)
			_, err := Load(Sources{File: file})
			for _, p := range problems(t, err) {
				if p.Key == c.key && strings.Contains(p.Message, c.inMsg) && p.Fix != "" {
					return
				}
			}
			t.Errorf("want a problem at %s containing %q with a fix, got: %v", c.key, c.inMsg, err)
		})
	}
	c, err := Load(Sources{File: writeFile(t, dir, "ok.yaml", minimal+"pullRequests: {enabled: true, provider: gitea, apiURL: 'http://127.0.0.1:3000/', owner: o, repository: r, tokenFile: "+token+"}")})
	if err != nil {
		t.Fatalf("valid gitea config: %v", err)
	}
	if c.PullRequests.PollInterval != 5*time.Minute || c.PullRequests.Timeout != 20*time.Second {
		t.Errorf("defaults: %+v", c.PullRequests)
	}
	if got := EnvName("pullRequests.apiURL"); got != "FLINK_GITOPS_PULL_REQUESTS_API_URL" {
		t.Errorf("env name %s", got)
	}
}
