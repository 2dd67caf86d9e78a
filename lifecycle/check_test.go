package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// pick returns one of the choices; the choice nil means "leave the field out".
func pick(r *rand.Rand, choices ...any) any { return choices[r.IntN(len(choices))] }

// mostly returns one of good, or one of bad one time in sixteen, so that a
// spec with a dozen fields is still often valid.
func mostly(r *rand.Rand, good []any, bad ...any) any {
	if len(bad) > 0 && r.IntN(16) == 0 {
		return bad[r.IntN(len(bad))]
	}
	return good[r.IntN(len(good))]
}

// randomSpec is a FlinkDeployment whose fields are drawn from valid and
// invalid values of the forms the operator's documentation uses.
func randomSpec(r *rand.Rand, name string) map[string]any {
	put := func(m map[string]any, k string, v any) {
		if v != nil {
			m[k] = v
		}
	}
	resources := func() map[string]any {
		out := map[string]any{}
		if r.IntN(10) > 0 {
			req := map[string]any{}
			put(req, "memory", mostly(r, []any{"2048m", "1g", "2Gi", "1500M", "1.5g", "4096m"}, "512m", "300m", "lots", "0", nil))
			put(req, "cpu", mostly(r, []any{"1", "500m", "0.5", nil}, "0", "x"))
			put(req, "ephemeral-storage", mostly(r, []any{nil, nil, "2Gi"}, "huge"))
			if len(req) > 0 {
				out["requests"] = req
			}
		}
		if r.IntN(3) == 0 {
			lim := map[string]any{}
			put(lim, "memory", mostly(r, []any{"4096m", "4Gi", "8g", nil}, "100m", "big"))
			put(lim, "cpu", mostly(r, []any{"2", "4", nil}, "250m", "x"))
			if len(lim) > 0 {
				out["limits"] = lim
			}
		}
		return out
	}
	component := func(jm bool) map[string]any {
		c := map[string]any{}
		switch r.IntN(10) {
		case 0, 1, 2, 3, 4:
			c["resources"] = resources()
		case 5, 6, 7, 8:
			res := map[string]any{}
			put(res, "memory", mostly(r, []any{"2048m", "1g", "2Gi", "1500M"}, "200m", "2 gigs", nil))
			put(res, "cpu", mostly(r, []any{1, 0.5, nil}, 0, -1))
			put(res, "ephemeralStorage", mostly(r, []any{nil, "1Gi"}, "x"))
			c["resource"] = res
		}
		if jm {
			put(c, "replicas", mostly(r, []any{nil, 1}, 2, 0))
		} else {
			put(c, "replicas", mostly(r, []any{nil, 1, 3}, 0))
		}
		if r.IntN(4) == 0 {
			c["podTemplate"] = podTemplate(r)
		}
		return c
	}
	conf := map[string]any{}
	for _, kv := range [][]any{
		{"taskmanager.numberOfTaskSlots", "2", "0", "x"},
		{"rest.port", "8081", "8081-8090", "x"},
		{"kubernetes.rest-service.exposed.type", "ClusterIP", "NodePort", "Bogus"},
		{"jobmanager.memory.process.size", "1g", "100m", "1600m"},
		{"taskmanager.memory.jvm-overhead.fraction", "0.1", "2"},
		{"kubernetes.jobmanager.cpu.amount", "1", "x"},
		{"kubernetes.jobmanager.labels", "team:data", "bad"},
		{"kubernetes.taskmanager.tolerations", "key:k,operator:Exists", "color:red"},
		{"pipeline.jobvertex-parallelism-overrides", "0a448493b4782967b150582570326227:2", "bad"},
		{"high-availability.type", "kubernetes", "none"},
		{"kubernetes.operator.periodic.savepoint.interval", "1h", "0 0 * * * ?", "often"},
		{"kubernetes.operator.job.autoscaler.enabled", "true"},
		{"a.key.with.a.value", "v", "line1\nline2", " padded "},
		{"env.java.opts.all", "-Dx=1 # not a comment", "line1\nline2"},
	} {
		if r.IntN(3) == 0 {
			conf[kv[0].(string)] = mostly(r, []any{kv[1]}, kv[2:]...)
		}
	}
	for _, k := range []string{"high-availability.storageDir", "state.checkpoints.dir", "state.savepoints.dir"} {
		if r.IntN(10) > 0 {
			conf[k] = "file:///" + strings.ReplaceAll(k, ".", "-")
		}
	}
	if r.IntN(30) == 0 {
		conf["kubernetes.cluster-id"] = "x"
	}
	if r.IntN(4) == 0 { // nested, Flink 1.19+ YAML
		conf["taskmanager"] = map[string]any{"memory": map[string]any{"managed": map[string]any{"fraction": pick(r, "0.4", 0.2)}}}
	}
	spec := map[string]any{"flinkConfiguration": conf}
	put(spec, "image", mostly(r, []any{"flink:2.2", "flink:1.20"}, nil))
	put(spec, "flinkVersion", mostly(r, []any{"v2_2", "v1_20", "v1_19", "v1_15", "v2_4"}, "v1_14", "v3_0", nil))
	put(spec, "mode", mostly(r, []any{nil, "native", "standalone"}, "bogus"))
	put(spec, "serviceAccount", pick(r, nil, "flink"))
	spec["jobManager"] = component(true)
	spec["taskManager"] = component(false)
	if r.IntN(4) == 0 {
		spec["podTemplate"] = podTemplate(r)
	}
	if r.IntN(5) == 0 {
		spec["logConfiguration"] = map[string]any{pick(r, "log4j-console.properties", "logback-console.xml", "log4j-console.properties").(string): "rootLogger.level = INFO"}
	}
	if r.IntN(5) == 0 {
		spec["ingress"] = map[string]any{"template": pick(r, "{{name}}.{{namespace}}.example.com", "example.com/{{namespace}}/{{name}}", "", "::bad")}
	}
	if r.IntN(4) > 0 {
		job := map[string]any{"jarURI": pick(r, "local:///opt/flink/usrlib/job.jar", "local:///opt/flink/examples/streaming/StateMachineExample.jar")}
		put(job, "parallelism", mostly(r, []any{1, 2, 4}, 0, -1))
		put(job, "upgradeMode", pick(r, "stateless", "savepoint", "last-state", nil))
		put(job, "state", pick(r, nil, "running", "suspended"))
		put(job, "initialSavepointPath", pick(r, nil, "file:///sp/savepoint-1"))
		put(job, "args", pick(r, nil, []any{"--a", "b c"}))
		put(job, "entryClass", pick(r, nil, "org.example.Job"))
		spec["job"] = job
	}
	return map[string]any{"apiVersion": v1beta1.APIVersion, "kind": v1beta1.KindFlinkDeployment,
		"metadata": map[string]any{"name": name, "namespace": "flink"}, "spec": spec}
}

func podTemplate(r *rand.Rand) map[string]any {
	main := map[string]any{"name": "flink-main-container"}
	switch r.IntN(4) {
	case 0:
		main["volumeMounts"] = []any{map[string]any{"name": "data", "mountPath": "/data"}}
	case 1:
		main["volumeMounts"] = []any{map[string]any{"name": "conf", "mountPath": "/opt/flink/conf"}}
	case 2:
		main["env"] = []any{map[string]any{"name": "A", "value": "b"}}
	}
	spec := map[string]any{"containers": []any{main}}
	switch r.IntN(3) {
	case 0:
		spec["volumes"] = []any{map[string]any{"name": "data", "emptyDir": map[string]any{}}}
	case 1:
		spec["volumes"] = []any{map[string]any{"name": cluster.ConfigVolume, "emptyDir": map[string]any{}}}
	}
	return map[string]any{"metadata": map[string]any{"labels": map[string]any{"team": "data"}}, "spec": spec}
}

// TestGateAcceptsOnlyWhatBuilds is the property behind "plan ≡ the static
// part of deploy": every FlinkDeployment that render accepts with the
// daemon's check builds without error for every input the reconciler gives
// the builder — a first deploy, an upgrade restoring a savepoint under a new
// job id, a suspension, and plan -o objects. Specs are generated from valid
// and invalid values of every field family; the test also reports how many
// the validator alone would have let through to a builder error.
func TestGateAcceptsOnlyWhatBuilds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 600
	files := map[string][]byte{}
	var names []string
	for i := range n {
		name := fmt.Sprintf("d%03d", i)
		b, err := json.Marshal(randomSpec(r, name))
		if err != nil {
			t.Fatal(err)
		}
		files["specs/"+name+".yaml"] = b
		names = append(names, name+".yaml")
	}
	files["specs/kustomization.yaml"] = []byte("resources: [" + strings.Join(names, ", ") + "]\n")
	defaults := map[string]string{"taskmanager.numberOfTaskSlots": "1"}
	for _, mode := range []v1beta1.DeploymentMode{v1beta1.ModeStandalone, v1beta1.ModeNative} {
		opts := render.Options{EntryPoints: []string{"specs"}, DefaultConfiguration: defaults, DefaultMode: mode}
		plain, err := render.NewRenderer().Render(context.Background(), render.MapSource{Files: files}, opts)
		if err != nil {
			t.Fatal(err)
		}
		opts.Check = CheckDeployment
		gated, err := render.NewRenderer().Render(context.Background(), render.MapSource{Files: files}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(gated.Resources) < n/20 || len(gated.Invalid) < n/20 {
			t.Fatalf("%s: %d accepted, %d refused of %d: the generator no longer explores both sides", mode, len(gated.Resources), len(gated.Invalid), n)
		}
		for _, res := range gated.Resources {
			d := res.Deployment
			spec := d.Spec
			if spec.Mode == "" {
				spec.Mode = mode
			}
			inputs := map[string]cluster.Input{
				"first deploy": {Name: d.Name, Namespace: d.Namespace, Spec: &spec, FlinkDefaults: defaults, SpecHash: res.Hash, SourceCommit: "c1"},
			}
			if spec.Job != nil {
				inputs["first deploy"] = cluster.Input{Name: d.Name, Namespace: d.Namespace, Spec: &spec, FlinkDefaults: defaults, SpecHash: res.Hash,
					SourceCommit: "c1", JobID: flinkclient.NewJobID(), SavepointPath: spec.Job.InitialSavepointPath}
				inputs["upgrade from a savepoint"] = cluster.Input{Name: d.Name, Namespace: d.Namespace, Spec: &spec, FlinkDefaults: defaults, SpecHash: res.Hash,
					SourceCommit: "c2", JobID: flinkclient.NewJobID(), SavepointPath: "s3://bucket/sp/savepoint-2", AllowNonRestoredState: true, OwnerUID: "uid"}
				suspended := spec
				job := *spec.Job
				job.State = v1beta1.JobStateSuspended
				suspended.Job = &job
				inputs["suspended"] = cluster.Input{Name: d.Name, Namespace: d.Namespace, Spec: &suspended, FlinkDefaults: defaults, SpecHash: res.Hash}
			}
			for what, in := range inputs {
				if _, err := cluster.Build(in); err != nil {
					t.Errorf("%s: %s accepted by render but the builder refuses the %s: %v", mode, d.Name, what, err)
				}
			}
			if _, err := Objects(res, defaults, mode, "c1"); err != nil {
				t.Errorf("%s: %s accepted by render but plan -o objects fails: %v", mode, d.Name, err)
			}
		}
		t.Logf("%s: %d specs: %d accepted, %d refused; the validator alone accepted %d (the builder refused %d of them)",
			mode, n, len(gated.Resources), len(gated.Invalid), len(plain.Resources), len(plain.Resources)-len(gated.Resources))
	}
}

// FuzzGate runs the same property on fuzzed seeds of the generator.
func FuzzGate(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 42} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		r := rand.New(rand.NewPCG(seed, seed>>1))
		b, _ := json.Marshal(randomSpec(r, "fz"))
		files := map[string][]byte{"s/kustomization.yaml": []byte("resources: [fz.yaml]\n"), "s/fz.yaml": b}
		res, err := render.NewRenderer().Render(context.Background(), render.MapSource{Files: files},
			render.Options{EntryPoints: []string{"s"}, Check: CheckDeployment, DefaultMode: v1beta1.ModeNative})
		if err != nil {
			t.Fatal(err)
		}
		for _, rs := range res.Resources {
			if _, err := Objects(rs, nil, v1beta1.ModeNative, ""); err != nil {
				t.Errorf("accepted %s but it does not build: %v", b, err)
			}
		}
	})
}

// TestSessionJobConfLayers: a session job reads a key from its own
// configuration, then its session cluster's, then the daemon's defaults, as
// the operator builds a session job's configuration; a deployment never
// reads another resource's.
func TestSessionJobConfLayers(t *testing.T) {
	defaults := map[string]string{"k": "default", "d": "default"}
	cluster := v1beta1.FlinkConfiguration{"k": "cluster", "c": "cluster"}
	job := v1beta1.FlinkConfiguration{"j": "job"}
	p := &pass{rec: &Record{Kind: KindSessionJob}, desired: &Desired{ClusterConfiguration: cluster}, set: Settings{FlinkDefaults: defaults}}
	for key, want := range map[string]string{"j": "job", "k": "cluster", "c": "cluster", "d": "default", "none": ""} {
		if got := p.conf(job, key); got != want {
			t.Errorf("session job conf(%s) = %q, want %q", key, got, want)
		}
	}
	p.rec.Kind = KindDeployment
	if got := p.conf(job, "c"); got != "" {
		t.Errorf("a deployment read another resource's key: %q", got)
	}
}

// BenchmarkGate measures what the builder check adds to a render of 500
// FlinkDeployments in one entry point (a fresh renderer each time, so the
// decode cache does not hide it).
func BenchmarkGate(b *testing.B) {
	files := map[string][]byte{}
	var names []string
	for i := range 500 {
		name := fmt.Sprintf("d%03d", i)
		spec := map[string]any{"apiVersion": v1beta1.APIVersion, "kind": v1beta1.KindFlinkDeployment,
			"metadata": map[string]any{"name": name, "namespace": "flink"},
			"spec": map[string]any{"image": "flink:2.2", "flinkVersion": "v2_2", "mode": "standalone",
				"flinkConfiguration": map[string]any{"state.checkpoints.dir": "s3://c", "state.savepoints.dir": "s3://s"},
				"jobManager":         map[string]any{"resources": map[string]any{"requests": map[string]any{"memory": "2048m", "cpu": "1"}}},
				"taskManager":        map[string]any{"resources": map[string]any{"requests": map[string]any{"memory": "4g", "cpu": "2"}}},
				"job":                map[string]any{"jarURI": "local:///opt/flink/usrlib/job.jar", "parallelism": 4, "upgradeMode": "savepoint"}}}
		data, _ := json.Marshal(spec)
		files["s/"+name+".yaml"] = data
		names = append(names, name+".yaml")
	}
	files["s/kustomization.yaml"] = []byte("resources: [" + strings.Join(names, ", ") + "]\n")
	for _, c := range []struct {
		name  string
		check func(*v1beta1.FlinkDeployment, map[string]string) *render.FieldProblem
	}{{"validate-only", nil}, {"validate+build", CheckDeployment}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				res, err := render.NewRenderer().Render(context.Background(), render.MapSource{Files: files},
					render.Options{EntryPoints: []string{"s"}, Check: c.check})
				if err != nil || len(res.Resources) != 500 {
					b.Fatalf("%v %d", err, len(res.Problems))
				}
			}
		})
	}
}
