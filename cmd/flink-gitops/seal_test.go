package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/flink-gitops/flink-gitops/cmd/flink-gitops/internal/daemon"
	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/sync/forge"
)

// seal runs sealNetwork for one test and undoes it afterwards (the test
// binary is not sealed; the flink-gitops binary seals itself in main).
func seal(t *testing.T) {
	t.Helper()
	orig := http.DefaultTransport
	old, had := os.LookupEnv("GIT_ALLOW_PROTOCOL")
	sealNetwork()
	t.Cleanup(func() {
		http.DefaultTransport = orig
		if had {
			os.Setenv("GIT_ALLOW_PROTOCOL", old)
		} else {
			os.Unsetenv("GIT_ALLOW_PROTOCOL")
		}
	})
}

// counting is a loopback server that counts the requests it receives.
func counting(t *testing.T, body string) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// kustomizeBuild runs kustomize the way render does, without render's
// precheck, on one kustomization.
func kustomizeBuild(t *testing.T, kustomization string) error {
	t.Helper()
	fs := filesys.MakeFsInMemory()
	if err := fs.WriteFile("/app/kustomization.yaml", []byte(kustomization)); err != nil {
		t.Fatal(err)
	}
	if err := fs.WriteFile("/app/cm.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")); err != nil {
		t.Fatal(err)
	}
	opts := krusty.MakeDefaultOptions()
	opts.PluginConfig = types.DisabledPluginConfig()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	_, err := krusty.MakeKustomizer(opts).Run(fs, "/app")
	return err
}

// TestSealStopsKustomizeFetching is the wall behind the render precheck:
// with the precheck out of the way, kustomize's own loader reaches a
// loopback server through a URL in `configurations:` and runs git for a
// remote `resources:` entry — unless the process is sealed.
func TestSealStopsKustomizeFetching(t *testing.T) {
	srv, hits := counting(t, "namePrefix: []\n")
	viaHTTP := "resources: [cm.yaml]\nconfigurations: [" + srv.URL + "/config.yaml]\n"
	viaGit := "resources: [cm.yaml, " + srv.URL + "/org/repo.git]\n"
	gitRuns := func() bool { _, err := exec.LookPath("git"); return err == nil }()

	// Unsealed, both fetch: the test can fail.
	_ = kustomizeBuild(t, viaHTTP)
	if hits.Load() == 0 {
		t.Fatal("unsealed kustomize did not fetch the configurations URL; the test proves nothing")
	}
	if gitRuns {
		before := hits.Load()
		_ = kustomizeBuild(t, viaGit)
		if hits.Load() == before {
			t.Fatal("unsealed kustomize did not run git against the server; the test proves nothing")
		}
	}

	seal(t)
	hits.Store(0)
	err := kustomizeBuild(t, viaHTTP)
	if err == nil || !strings.Contains(err.Error(), "never reaches the network") {
		t.Errorf("sealed configurations URL: err = %v, want the refusal", err)
	}
	if gitRuns {
		err = kustomizeBuild(t, viaGit)
		if err == nil {
			t.Error("sealed remote resource built")
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the sealed process sent %d requests", n)
	}
	if _, err := http.Get(srv.URL); err == nil || hits.Load() != 0 {
		t.Errorf("http.Get through the sealed default transport: err = %v, requests %d", err, hits.Load())
	}
}

// TestSealKeepsOurClientsWorking: every client the binary uses has its own
// transport, so sealing changes nothing for them.
func TestSealKeepsOurClientsWorking(t *testing.T) {
	seal(t)
	ctx := context.Background()

	flink, flinkHits := counting(t, `{"refresh-interval":3000,"timezone-name":"UTC","timezone-offset":0,"flink-version":"2.2.1","flink-revision":"x","features":{"web-submit":false,"web-cancel":false,"web-rescale":false,"web-history":false}}`)
	if _, err := flinkclient.New(flink.URL).Config(ctx); err != nil || flinkHits.Load() == 0 {
		t.Errorf("flinkclient with its default transport: %v (requests %d)", err, flinkHits.Load())
	}

	gitea, giteaHits := counting(t, `[]`)
	f, err := forge.New(forge.Options{Provider: forge.Gitea, BaseURL: gitea.URL, Owner: "o", Repo: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.PullRequests(ctx, "main"); err != nil || giteaHits.Load() == 0 {
		t.Errorf("forge with its default transport: %v (requests %d)", err, giteaHits.Load())
	}

	// A plain-http kubeconfig (kubectl proxy): client-go would pick
	// http.DefaultTransport for a config without TLS settings.
	kube, kubeHits := counting(t, `{"major":"1","minor":"37","gitVersion":"v1.37.2"}`)
	rc := &rest.Config{Host: kube.URL}
	daemon.OwnTransport(rc)
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.Discovery().ServerVersion(); err != nil || kubeHits.Load() == 0 {
		t.Errorf("kube client for a plain-http server: %v (requests %d)", err, kubeHits.Load())
	}
}
