// Package s3 runs a real S3-compatible object store for tests: versitygw
// (github.com/versity/versitygw) with its posix backend, built from source
// by tests/scripts/build-versitygw.sh and started as a local process on a
// loopback port with a temporary directory.
//
//	s := s3.Start(t)                        // one server for this test
//	s.Put(t, "jars", "flink/job.jar", data) // creates the bucket if needed
//	// point a client at s.Endpoint with s.Region, s.AccessKey, s.SecretKey (path style)
package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
)

// Version is the versitygw version the test bed runs. It must match
// VERSITYGW_VERSION in tests/scripts/build-versitygw.sh.
const Version = "v1.8.0"

// BuildHint says how to build the server when it is missing.
const BuildHint = "build it with: bash tests/scripts/build-versitygw.sh (about 2 minutes cold, once per version), or make testbed"

// Binary returns the path of the built versitygw binary:
// kube.CacheRoot() + /versitygw-<v>/versitygw.
func Binary() (string, error) {
	root, err := kube.CacheRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "versitygw-"+Version, "versitygw")
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("versitygw %s is not built (no executable %s); %s", Version, bin, BuildHint)
	}
	return bin, nil
}

// Server is a running versitygw on 127.0.0.1. Requests must use path-style
// addressing (endpoint/bucket/key).
type Server struct {
	// Endpoint is "http://127.0.0.1:PORT".
	Endpoint string
	// Region the server signs with.
	Region string
	// AccessKey and SecretKey are the root user's key pair (random).
	AccessKey, SecretKey string

	dir     string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

// Start starts a server for this test alone and stops it (and removes its
// directory) in t.Cleanup. It skips the test under -short and fails it,
// with the build hint, when the binary is missing. On failure the last
// lines of the server's log are logged.
func Start(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	dir, err := os.MkdirTemp("", "s3-testbed-")
	if err != nil {
		t.Fatalf("create s3 dir: %v", err)
	}
	s, err := New(dir)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("start versitygw: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("versitygw log %s, last lines:\n%s", s.logPath, tail(s.logPath, 4096))
		}
		if err := s.Close(); err != nil {
			t.Errorf("stop versitygw: %v", err)
		}
		os.RemoveAll(dir)
	})
	return s
}

// New starts versitygw with its data under dir and returns once it answers
// its health endpoint. Close stops it.
func New(dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Region:    "us-east-1",
		AccessKey: "testbed" + randHex(6),
		SecretKey: randHex(20),
		dir:       dir,
		logPath:   filepath.Join(dir, "versitygw.log"),
	}
	for _, d := range []string{"data", "meta"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// A port found free may be taken before versitygw binds it; try again then.
	var last error
	for range 3 {
		if last = s.start(bin); last == nil {
			return s, nil
		}
	}
	return nil, last
}

func (s *Server) start(bin string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin,
		"--port", addr, "--region", s.Region, "--health", "/health", "--quiet",
		"posix", "--sidecar", filepath.Join(s.dir, "meta"), filepath.Join(s.dir, "data"))
	// The key pair goes through the environment, not the command line (ps).
	cmd.Env = append(cleanEnv(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	s.cmd, s.done, s.waitErr = cmd, make(chan struct{}), nil
	go func() { s.waitErr = cmd.Wait(); close(s.done) }()
	s.Endpoint = "http://" + addr

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("versitygw exited before it answered (%v); log %s:\n%s", s.waitErr, s.logPath, tail(s.logPath, 4096))
		case <-ctx.Done():
			s.Close()
			return fmt.Errorf("versitygw did not answer at %s: %w (last: %v)", s.Endpoint, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close stops the server (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (s *Server) Close() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	return nil
}

// Client returns an S3 client for the server with the root key pair.
func (s *Server) Client() *awss3.Client {
	return awss3.New(awss3.Options{
		BaseEndpoint:               aws.String(s.Endpoint),
		Region:                     s.Region,
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// CreateBucket creates a bucket; one that already exists is fine.
func (s *Server) CreateBucket(t testing.TB, bucket string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := s.Client().CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
}

// Put stores data at bucket/key, creating the bucket if needed.
func (s *Server) Put(t testing.TB, bucket, key string, data []byte) {
	t.Helper()
	s.CreateBucket(t, bucket)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := s.Client().PutObject(ctx, &awss3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		t.Fatalf("put s3://%s/%s: %v", bucket, key, err)
	}
}

// PutFile stores the file at path at bucket/key (e.g. the test job jar).
func (s *Server) PutFile(t testing.TB, bucket, key, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	s.Put(t, bucket, key, data)
}

// cleanEnv is the test's environment without AWS_* and VGW_* settings, so a
// developer's shell cannot change the server.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "VGW_") || strings.HasPrefix(kv, "ROOT_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tail returns up to the last n bytes of a file.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(fi.Size()-n, 0)
	}
	b := make([]byte, n)
	k, _ := f.Read(b)
	return string(b[:k])
}
