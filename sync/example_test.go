package sync_test

import (
	"context"
	"fmt"
	"io/fs"
	"log"
	"net/http"
	"time"

	"github.com/flink-gitops/flink-gitops/sync"
)

// How the daemon wires the pieces together: a Source polled by Run and
// woken by the webhook, each new snapshot handed to rendering, and status
// committed to the status branch once per cycle.
func Example() {
	src, err := sync.NewSource(sync.Options{
		URL:      "https://git.example.com/team/flink-specs.git",
		Branch:   "main",
		Auth:     sync.Auth{Username: "flink-gitops", TokenFile: "/var/run/secrets/git/token"},
		Interval: time.Minute,
		Verify:   &sync.VerifyOptions{SSHKeyFiles: []string{"/etc/flink-gitops/allowed_signers"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	hook, err := sync.NewWebhookHandler(sync.WebhookOptions{
		Secrets: sync.StaticSecrets(sync.WebhookSecrets{GitHub: []byte("from a file")}), Branch: "main",
	}, src.Wake)
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/webhook", hook)

	status, err := sync.NewStatusWriter(sync.StatusWriterOptions{
		URL:           "https://git.example.com/team/flink-specs.git",
		Branch:        "flink-gitops-status",
		WatchedBranch: "main",
		Auth:          sync.Auth{Username: "flink-gitops", TokenFile: "/var/run/secrets/git/token"},
		Author:        sync.Signature{Name: "flink-gitops", Email: "flink-gitops@example.com"},
	})
	if err != nil {
		log.Fatal(err)
	}

	_ = src.Run(context.Background(), func(snap *sync.Snapshot) {
		// Render from the in-memory tree; re-render only what changed.
		_ = fs.WalkDir(snap.FS(), "apps", func(path string, d fs.DirEntry, err error) error { return err })
		fmt.Println(snap.Commit, snap.ChangedPaths)

		files := map[string][]byte{
			"flink/FlinkDeployment/orders.yaml":  []byte("lifecycleState: STABLE\n"),
			"flink/FlinkDeployment/removed.yaml": nil, // deleted resource
			"README.md":                          []byte("# Status\n"),
		}
		if _, err := status.Write(context.Background(), files, snap.Commit); err != nil {
			log.Print(err)
		}
	})
}
