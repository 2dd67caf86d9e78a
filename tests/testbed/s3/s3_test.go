package s3

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestServerRoundTrip: the real server stores and returns an object, and
// Close leaves no process behind.
func TestServerRoundTrip(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.Put(t, "jars", "flink/job.jar", []byte("PK\x03\x04 not really a jar"))
	s.Put(t, "jars", "flink/other.jar", []byte("second")) // bucket exists already: fine

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := s.Client().GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("jars"), Key: aws.String("flink/job.jar")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || string(got) != "PK\x03\x04 not really a jar" {
		t.Fatalf("got %q, %v", got, err)
	}

	pid := s.cmd.Process.Pid
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
		t.Errorf("versitygw (pid %d) still exists after Close: %v", pid, err)
	}
}

// TestVersionMatchesBuildScript: the Go side looks for the binary the
// build script makes.
func TestVersionMatchesBuildScript(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "scripts", "build-versitygw.sh"))
	if err != nil {
		t.Fatal(err)
	}
	want := `VERSITYGW_VERSION="${VERSITYGW_VERSION:-` + Version + `}"`
	if !strings.Contains(string(b), want) {
		t.Errorf("build-versitygw.sh does not build %s (want the line %s)", Version, want)
	}
}
