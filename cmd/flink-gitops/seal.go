package main

import (
	"fmt"
	"net/http"
	"os"
)

// sealNetwork closes the two doors through which a library in the binary
// could reach the network on its own, and must run before anything else:
//
//   - net/http's default transport is replaced by one that refuses every
//     request. Every client of ours has its own transport (Flink REST,
//     forges, artifact downloads; go-git's captured the original at init),
//     so the only callers left are libraries fetching by themselves —
//     kustomize's file loader for a URL in `configurations:`, `crds:` or a
//     patch path;
//   - GIT_ALLOW_PROTOCOL allows no protocol to any git program a library
//     might run (kustomize clones remote `resources:` with git; flink-gitops
//     itself only uses go-git).
//
// The render precheck refuses such references with file, field and fix
// before kustomize runs; this is the wall behind it.
func sealNetwork() {
	http.DefaultTransport = refusingTransport{}
	os.Setenv("GIT_ALLOW_PROTOCOL", "flink-gitops-allows-none")
}

// refusingTransport answers every request with an error and sends nothing.
type refusingTransport struct{}

func (refusingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return nil, fmt.Errorf("refused %s %s: flink-gitops never reaches the network through Go's default HTTP transport (renders read only the repository snapshot)",
		r.Method, r.URL.Redacted())
}
