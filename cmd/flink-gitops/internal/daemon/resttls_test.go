package daemon

import (
	"testing"

	"github.com/flink-gitops/flink-gitops/config"
	"github.com/flink-gitops/flink-gitops/render"
)

// TestRenderOptionsRESTTLS: plan, PR plans and the daemon refuse REST SSL
// specs by the same rule, which knows the daemon's own TLS files.
func TestRenderOptionsRESTTLS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tls  config.FlinkTLS
		want render.RESTTLSDefaults
	}{
		{config.FlinkTLS{}, render.RESTTLSDefaults{}},
		{config.FlinkTLS{CAFile: "/ca"}, render.RESTTLSDefaults{CA: true}},
		{config.FlinkTLS{CAFile: "/ca", CertFile: "/c", KeyFile: "/k"}, render.RESTTLSDefaults{CA: true, ClientCert: true}},
	} {
		c := config.Default()
		c.Flink.TLS = tc.tls
		if got := RenderOptions(c).RESTTLS; got != tc.want {
			t.Errorf("flink.tls %+v: RESTTLS %+v, want %+v", tc.tls, got, tc.want)
		}
	}
}
