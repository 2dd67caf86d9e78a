package pki

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// TestWriteFlinkStores: the stores Flink reads hold the server key and the
// CA (read back with keytool).
func TestWriteFlinkStores(t *testing.T) {
	if _, err := exec.LookPath("keytool"); err != nil {
		t.Skip("no keytool (JDK) on PATH")
	}
	s, err := New("app-rest.ns", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ks, ts, err := s.WriteFlinkStores(context.Background(), t.TempDir(), "secret1")
	if err != nil {
		t.Fatal(err)
	}
	for store, want := range map[string]string{ks: "PrivateKeyEntry", ts: "trustedCertEntry"} {
		out, err := exec.Command("keytool", "-list", "-keystore", store, "-storepass", "secret1").CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Fatalf("keytool -list %s: %v\n%s", store, err, out)
		}
	}
}
