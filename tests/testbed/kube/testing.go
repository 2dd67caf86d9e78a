package kube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// startTimeout bounds a start from the test helpers, including a cold build.
const startTimeout = 25 * time.Minute

// skipShort skips t under -short: the control plane is an integration dependency.
func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
}

// Start starts a control plane for this test alone and stops it in
// t.Cleanup. It skips the test under -short. When the test fails, the log
// paths and their last 40 lines are logged and the logs are kept.
func Start(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	skipShort(t)
	dir, err := os.MkdirTemp("", "kube-testbed-")
	if err != nil {
		t.Fatalf("create control plane dir: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := NewCluster(ctx, dir, opts...)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() {
		failed := t.Failed()
		if failed {
			t.Logf("control plane logs (kept in %s):\n%s", c.Dir, c.LogTails(40))
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
		if !failed {
			os.RemoveAll(dir)
		}
	})
	return c
}

// shared holds the control planes of Shared, one per option set, for Main to stop.
var shared struct {
	mu       sync.Mutex
	inMain   bool
	clusters map[string]*sharedCluster
}

type sharedCluster struct {
	c   *Cluster
	err error
}

// Main runs a test binary's tests and then stops the control planes that
// Shared started. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(kube.Main(m)) }
//
// When a test failed, the control plane logs are kept and their tails printed.
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for _, s := range shared.clusters {
		if s.c == nil {
			continue
		}
		if code != 0 {
			fmt.Fprintf(os.Stderr, "control plane logs (kept in %s):\n%s", s.c.Dir, s.c.LogTails(40))
		}
		if err := s.c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop control plane: %v\n", err)
		}
		if code == 0 {
			os.RemoveAll(s.c.Dir)
		}
	}
	shared.clusters = nil
	return code
}

// Shared returns the control plane shared by all tests of this test binary
// that ask for the same options, starting it on first use. TestMain must call
// Main, which stops it. It skips the test under -short. Tests sharing a
// control plane should work in their own namespace (see Namespace).
func Shared(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	skipShort(t)
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	key := fmt.Sprintf("%+v", cfg)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		t.Fatal("kube.Shared needs TestMain to call kube.Main: func TestMain(m *testing.M) { os.Exit(kube.Main(m)) }")
	}
	s, ok := shared.clusters[key]
	if !ok {
		s = &sharedCluster{}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		dir, err := os.MkdirTemp("", "kube-testbed-")
		if err == nil {
			s.c, s.err = NewCluster(ctx, dir, opts...)
			if s.err != nil {
				os.RemoveAll(dir)
			}
		} else {
			s.err = fmt.Errorf("create control plane dir: %w", err)
		}
		cancel()
		if shared.clusters == nil {
			shared.clusters = map[string]*sharedCluster{}
		}
		shared.clusters[key] = s
	}
	if s.err != nil {
		t.Fatalf("start shared control plane: %v", s.err)
	}
	c := s.c
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("shared control plane logs (in %s):\n%s", c.Dir, c.LogTails(40))
		}
	})
	return c
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a namespace named after the test (plus a random suffix)
// and deletes it in t.Cleanup. Without WithControllerManager no namespace
// controller empties a deleted namespace: it stays Terminating with its
// objects, and the next test's node agent (which watches every namespace)
// would start the Deployments and Pods left there again. So the cleanup
// first deletes the namespace's Deployments and Pods, the objects a node
// agent runs, as the namespace controller would.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	base := strings.Trim(nonName.ReplaceAllString(strings.ToLower(filepath.Base(t.Name())), "-"), "-")
	if len(base) > 40 {
		base = strings.TrimRight(base[:40], "-")
	}
	if base == "" {
		base = "test"
	}
	name := base + "-" + rand.String(5)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.client.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.client.AppsV1().Deployments(name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			t.Logf("delete the Deployments of namespace %s: %v", name, err)
		}
		zero := int64(0)
		if err := c.client.CoreV1().Pods(name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
			t.Logf("delete the Pods of namespace %s: %v", name, err)
		}
		if err := c.client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Logf("delete namespace %s: %v", name, err)
		}
	})
	return name
}
