// Command kube-testbed runs the test bed's Kubernetes control plane (etcd,
// kube-apiserver and optionally kube-controller-manager) on 127.0.0.1 until
// it gets SIGINT or SIGTERM; for `make demo` and for poking at it by hand.
//
//	go run ./tests/testbed/kube/cmd/kube-testbed -dir /tmp/demo-kube -controller-manager
//	export KUBECONFIG=/tmp/demo-kube/kubeconfig
//
// The kubeconfig file appears in -dir once everything is ready and is removed
// on exit, so a script can wait for it. The one stdout line is its path.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
)

func main() {
	dir := flag.String("dir", "", "directory for credentials, logs, data and the kubeconfig (default: a temporary dir, removed on exit)")
	cm := flag.Bool("controller-manager", false, "also run kube-controller-manager (garbage collection, namespace deletion, default service accounts)")
	timeout := flag.Duration("start-timeout", 25*time.Minute, "give up starting after this long (includes a first build)")
	flag.Parse()
	if err := run(*dir, *cm, *timeout); err != nil {
		slog.Error("kube-testbed", "err", err)
		os.Exit(1)
	}
}

func run(dir string, cm bool, timeout time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var opts []kube.Option
	if cm {
		opts = append(opts, kube.WithControllerManager())
	}
	start := time.Now()
	startCtx, cancel := context.WithTimeout(ctx, timeout)
	c, err := kube.NewCluster(startCtx, dir, opts...)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		if err := c.Stop(); err != nil {
			slog.Error("stop control plane", "err", err)
		}
	}()
	attrs := []any{"host", c.Host, "kubeconfig", c.Kubeconfig, "dir", c.Dir, "took", time.Since(start).Round(time.Millisecond)}
	for _, p := range c.Processes() {
		attrs = append(attrs, p.Name, fmt.Sprintf("pid %d, log %s", p.PID, p.Log))
	}
	slog.Info("control plane ready", attrs...)
	fmt.Println(c.Kubeconfig)
	<-ctx.Done()
	slog.Info("stopping control plane")
	return nil
}
