package lifecycle

import "github.com/flink-gitops/flink-gitops/render"

// testArtifacts lets the fake-cluster tests use jars in temporary
// directories: file:// anywhere, an explicit opt-in.
var testArtifacts = render.ArtifactPolicy{AllowedSchemes: []string{"https", "file"}, FileDirectory: "/"}
