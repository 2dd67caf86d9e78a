package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
)

// Handle is a running agent with its Service proxy.
type Handle struct {
	Agent *Agent
	// ProxyURL is the base of the Service proxy: ProxyURL + "/<ns>/<svc>/…".
	ProxyURL string
	// Dir holds the replicas' working directories and logs.
	Dir string

	cancel context.CancelFunc
	done   chan error
	srv    *http.Server
}

// RESTURLTemplate is the daemon's flink.restURLTemplate for this agent.
func (h *Handle) RESTURLTemplate() string {
	return h.ProxyURL + "/{{.Namespace}}/{{.Name}}-rest"
}

// Launch starts an agent and its Service proxy outside of a test (the demo
// uses it). Stop stops both and every process.
func Launch(client kubernetes.Interface, rt Runtime, dir string, log *slog.Logger, opts ...Option) (*Handle, error) {
	a := New(client, rt, dir, log, opts...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Handle{Agent: a, ProxyURL: "http://" + l.Addr().String(), Dir: dir, cancel: cancel, done: make(chan error, 1)}
	h.srv = &http.Server{Handler: a.ServiceProxy(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = h.srv.Serve(l) }()
	go func() { h.done <- a.Run(ctx) }()
	return h, nil
}

// Stop stops the agent, its processes and the proxy.
func (h *Handle) Stop() error {
	h.cancel()
	err := <-h.done
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := h.srv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// Start runs an agent for the test and stops it (and every process it
// started) in t.Cleanup. On failure the replicas' log tails are printed.
func Start(t testing.TB, client kubernetes.Interface, rt Runtime, opts ...Option) *Handle {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	dir, err := os.MkdirTemp("", "nodeagent-")
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := Launch(client, rt, dir, slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelDebug})), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Stop(); err != nil {
			t.Errorf("stop node agent: %v", err)
		}
		logf.Close()
		if t.Failed() {
			t.Logf("node agent logs kept in %s:\n%s", dir, LogTails(dir, 40))
			return
		}
		os.RemoveAll(dir)
	})
	return h
}

// LogTails returns the last n lines of every log under dir.
func LogTails(dir string, n int) string {
	var out string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".log" {
			return nil
		}
		out += fmt.Sprintf("==> %s <==\n%s\n", p, tail(p, n))
		return nil
	})
	return out
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, _ := f.Stat()
	const max = 64 << 10
	if st != nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := ""
	for _, l := range lines {
		out += l + "\n"
	}
	return out
}
