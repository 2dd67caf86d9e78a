package render

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// validDeployment is a FlinkDeployment that passes every rule.
func validDeployment(name string) map[string]any {
	return map[string]any{
		"apiVersion": "flink.apache.org/v1beta1",
		"kind":       "FlinkDeployment",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"image":        "flink:2.2",
			"flinkVersion": "v2_2",
			"flinkConfiguration": map[string]any{
				"state.checkpoints.dir": "file:///cp",
				"state.savepoints.dir":  "file:///sp",
			},
			"jobManager":  map[string]any{"resources": map[string]any{"requests": map[string]any{"memory": "1Gi", "cpu": "1"}}},
			"taskManager": map[string]any{"resources": map[string]any{"requests": map[string]any{"memory": "1Gi", "cpu": "1"}}},
			"job": map[string]any{
				"jarURI":      "local:///opt/flink/usrlib/job.jar",
				"parallelism": 2,
				"upgradeMode": "savepoint",
			},
		},
	}
}

func validSessionCluster(name string) map[string]any {
	d := validDeployment(name)
	delete(d["spec"].(map[string]any), "job")
	return d
}

func validSessionJob(name, cluster string) map[string]any {
	return map[string]any{
		"apiVersion": "flink.apache.org/v1beta1",
		"kind":       "FlinkSessionJob",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"deploymentName": cluster,
			"job":            map[string]any{"jarURI": "https://repo.example.com/job.jar", "parallelism": 1},
		},
	}
}

// set walks a dotted path (creating maps) and sets or, with nil, deletes.
func set(obj map[string]any, path string, v any) {
	parts := strings.Split(path, "/")
	m := obj
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	if v == nil {
		delete(m, parts[len(parts)-1])
	} else {
		m[parts[len(parts)-1]] = v
	}
}

func yamlDocs(t testing.TB, objs ...map[string]any) []byte {
	t.Helper()
	var docs []string
	for _, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	return []byte(strings.Join(docs, "\n---\n") + "\n")
}

// renderFiles renders a MapSource with the given entry points.
func renderFiles(t testing.TB, files map[string]string, opts Options) *Result {
	t.Helper()
	src := MapSource{Files: map[string][]byte{}}
	for p, c := range files {
		src.Files[p] = []byte(c)
	}
	if opts.EntryPoints == nil {
		opts.EntryPoints = []string{"app"}
	}
	res, err := NewRenderer().Render(context.Background(), src, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func problemLines(ps []Problem) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

// TestValidationRules has one case per validation rule: each mutates a
// valid resource and expects exactly the listed problems.
func TestValidationRules(t *testing.T) {
	const file = "app/r.yaml"
	dep := func(mut func(d map[string]any)) []map[string]any {
		d := validDeployment("orders")
		mut(d)
		return []map[string]any{d}
	}
	tests := []struct {
		name string
		objs []map[string]any
		opts Options
		want []string
	}{
		{"valid", dep(func(map[string]any) {}), Options{}, nil},
		{"namespace not allowed", dep(func(d map[string]any) { set(d, "metadata/namespace", "kube-system") }), Options{AllowedNamespaces: []string{"flink"}},
			[]string{`app: app/r.yaml: FlinkDeployment kube-system/orders: metadata.namespace: namespace "kube-system" is not in the allow-list [flink] (fix: deploy into an allowed namespace, or add the namespace to the daemon's allowed namespaces)`}},
		{"default namespace must be allowed too", dep(func(map[string]any) {}), Options{DefaultNamespace: "default", AllowedNamespaces: []string{"flink"}},
			[]string{`app: app/r.yaml: FlinkDeployment default/orders: metadata.namespace: namespace "default" is not in the allow-list [flink] (fix: deploy into an allowed namespace, or add the namespace to the daemon's allowed namespaces)`}},
		{"explicit namespace without a default", dep(func(map[string]any) {}), Options{DefaultNamespace: "-"},
			nil},
		{"name not a DNS label", dep(func(d map[string]any) { set(d, "metadata/name", "Orders_1") }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/Orders_1: metadata.name: name "Orders_1" is not a DNS label (fix: use lower-case letters, digits and '-', starting with a letter and ending with a letter or digit)`}},
		{"name starts with a digit", dep(func(d map[string]any) { set(d, "metadata/name", "1orders") }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/1orders: metadata.name: name "1orders" is not a DNS label (fix: use lower-case letters, digits and '-', starting with a letter and ending with a letter or digit)`}},
		{"name longer than 45", dep(func(d map[string]any) { set(d, "metadata/name", strings.Repeat("a", 46)) }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/` + strings.Repeat("a", 46) + `: metadata.name: name "` + strings.Repeat("a", 46) + `" is 46 characters, longer than 45 (fix: shorten the name to at most 45 characters)`}},
		{"missing image", dep(func(d map[string]any) { set(d, "spec/image", nil) }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.image: image is missing (fix: set spec.image to a Flink image, e.g. flink:2.2)`}},
		{"missing flinkVersion", dep(func(d map[string]any) { set(d, "spec/flinkVersion", nil) }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.flinkVersion: flinkVersion is missing (fix: set spec.flinkVersion, e.g. v1_20 or v2_2)`}},
		{"flinkVersion the operator no longer supports", dep(func(d map[string]any) { set(d, "spec/flinkVersion", "v1_14") }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.flinkVersion: flinkVersion v1_14 is no longer supported (by the operator either) (fix: upgrade the image to Flink 1.15 or newer and set flinkVersion accordingly (tested: v1_18, v1_19, v1_20, v2_0, v2_1, v2_2, v2_3))`}},
		{"checkpoint nonce on Flink 1.16", dep(func(d map[string]any) {
			set(d, "spec/flinkVersion", "v1_16")
			set(d, "spec/job/checkpointTriggerNonce", 2)
		}), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.job.checkpointTriggerNonce: Flink v1_16 cannot trigger checkpoints through its REST API (Flink 1.17 and newer can) (fix: remove checkpointTriggerNonce, or upgrade to Flink 1.17 or newer (set spec.flinkVersion and the image))`}},
		{"periodic checkpoints on Flink 1.15", dep(func(d map[string]any) {
			set(d, "spec/flinkVersion", "v1_15")
			set(d, "spec/flinkConfiguration/kubernetes.operator.periodic.checkpoint.interval", "10m")
		}), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.flinkConfiguration["kubernetes.operator.periodic.checkpoint.interval"]: Flink v1_15 cannot trigger checkpoints through its REST API (Flink 1.17 and newer can) (fix: remove the key (Flink's own execution.checkpointing.interval still checkpoints), or upgrade to Flink 1.17 or newer)`}},
		{"checkpoint requests on Flink 1.17", dep(func(d map[string]any) {
			set(d, "spec/flinkVersion", "v1_17")
			set(d, "spec/job/checkpointTriggerNonce", 2)
			set(d, "spec/flinkConfiguration/kubernetes.operator.periodic.checkpoint.interval", "10m")
			set(d, "spec/flinkConfiguration/kubernetes.operator.checkpoint.type", "FULL")
		}), Options{}, nil},
		{"unknown flinkVersion", dep(func(d map[string]any) { set(d, "spec/flinkVersion", "v3_0") }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.flinkVersion: unknown flinkVersion "v3_0" (fix: use one of the operator's versions, v1_15 to v2_4)`}},
		{"jarURI without scheme", dep(func(d map[string]any) { set(d, "spec/job/jarURI", "/opt/flink/job.jar") }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.job.jarURI: jarURI "/opt/flink/job.jar" has no scheme (fix: use a URI with one of the schemes local, file, https, http, s3, s3a, s3p, gs, hdfs, abfs, abfss, wasb, wasbs, oss, e.g. local:///opt/flink/usrlib/job.jar)`}},
		{"jarURI bad scheme", dep(func(d map[string]any) { set(d, "spec/job/jarURI", "ftp://host/job.jar") }), Options{JarURISchemes: []string{"local"}},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.job.jarURI: jarURI scheme "ftp" is not allowed (fix: use one of the schemes local)`}},
		{"parallelism zero", dep(func(d map[string]any) { set(d, "spec/job/parallelism", 0) }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.job.parallelism: job parallelism is 0; it must be at least 1 (fix: set spec.job.parallelism to 1 or more)`}},
		{"parallelism negative", dep(func(d map[string]any) { set(d, "spec/job/parallelism", -2) }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.job.parallelism: job parallelism is -2; it must be at least 1 (fix: set spec.job.parallelism to 1 or more)`}},
		{"taskManager replicas zero", dep(func(d map[string]any) { set(d, "spec/taskManager/replicas", 0) }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.taskManager.replicas: taskManager.replicas is 0; it must be at least 1 (fix: set spec.taskManager.replicas to 1 or more)`}},
		{"jobManager replicas zero", dep(func(d map[string]any) { set(d, "spec/jobManager/replicas", 0) }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.jobManager.replicas: jobManager.replicas is 0; it must be at least 1 (fix: set spec.jobManager.replicas to 1 (or more with high availability))`}},
		{"standby JobManagers without HA", dep(func(d map[string]any) { set(d, "spec/jobManager/replicas", 2) }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.jobManager.replicas: standby JobManagers (replicas > 1) need high availability (fix: enable high-availability.type, or set replicas to 1)`}},
		{"HA without storage dir", dep(func(d map[string]any) { set(d, "spec/flinkConfiguration/high-availability.type", "kubernetes") }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.flinkConfiguration["high-availability.storageDir"]: high availability is on but has no storage directory for its metadata (fix: set high-availability.storageDir (e.g. s3://bucket/ha) in the spec or in the daemon's flink.defaultConfiguration)`}},
		{"HA storage dir from the daemon's defaults", dep(func(d map[string]any) { set(d, "spec/flinkConfiguration/high-availability.type", "kubernetes") }),
			Options{DefaultConfiguration: map[string]string{"high-availability.storageDir": "s3://b/ha"}}, nil},
		{"savepoint mode without checkpoint dir", dep(func(d map[string]any) { set(d, "spec/flinkConfiguration/state.checkpoints.dir", nil) }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.flinkConfiguration: upgradeMode savepoint needs a checkpoint directory (fix: set execution.checkpointing.dir (or state.checkpoints.dir) in flinkConfiguration)`}},
		{"savepoint mode without savepoint dir", dep(func(d map[string]any) { set(d, "spec/flinkConfiguration/state.savepoints.dir", nil) }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.flinkConfiguration: upgradeMode savepoint needs a savepoint directory (fix: set execution.checkpointing.savepoint-dir (or state.savepoints.dir) in flinkConfiguration)`}},
		{"last-state without checkpoint dir", dep(func(d map[string]any) {
			set(d, "spec/job/upgradeMode", "last-state")
			set(d, "spec/flinkConfiguration", map[string]any{})
		}), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.flinkConfiguration: upgradeMode last-state needs a checkpoint directory (fix: set execution.checkpointing.dir (or state.checkpoints.dir) in flinkConfiguration)`}},
		{"checkpoint dir from the daemon's default configuration", dep(func(d map[string]any) {
			set(d, "spec/job/upgradeMode", "last-state")
			set(d, "spec/flinkConfiguration", map[string]any{})
		}), Options{DefaultConfiguration: map[string]string{"execution.checkpointing.dir": "s3://b/cp"}}, nil},
		{"Flink 2 key names, nested", dep(func(d map[string]any) {
			set(d, "spec/flinkConfiguration", map[string]any{"execution": map[string]any{"checkpointing": map[string]any{"dir": "s3://b/cp", "savepoint-dir": "s3://b/sp"}}})
		}), Options{}, nil},
		{"periodic savepoints without savepoint dir", dep(func(d map[string]any) {
			set(d, "spec/job/upgradeMode", "last-state")
			set(d, "spec/flinkConfiguration/state.savepoints.dir", nil)
			set(d, "spec/flinkConfiguration/kubernetes.operator.periodic.savepoint.interval", "1h")
		}), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.flinkConfiguration: kubernetes.operator.periodic.savepoint.interval (periodic savepoints) needs a savepoint directory (fix: set execution.checkpointing.savepoint-dir (or state.savepoints.dir) in flinkConfiguration)`}},
		{"unknown job state", dep(func(d map[string]any) { set(d, "spec/job/state", "paused") }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.job.state: unknown job state "paused" (fix: use running or suspended)`}},
		{"unknown upgrade mode", dep(func(d map[string]any) { set(d, "spec/job/upgradeMode", "snapshot") }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.job.upgradeMode: unknown upgradeMode "snapshot" (fix: use stateless, savepoint or last-state)`}},
		{"unknown mode", dep(func(d map[string]any) { set(d, "spec/mode", "yarn") }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.mode: unknown mode "yarn" (fix: use native or standalone)`}},
		{"operator duration invalid", dep(func(d map[string]any) {
			set(d, "spec/flinkConfiguration/kubernetes.operator.deployment.readiness.timeout", "five minutes")
		}), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.flinkConfiguration["kubernetes.operator.deployment.readiness.timeout"]: invalid value "five minutes" for kubernetes.operator.deployment.readiness.timeout: not a duration (fix: use a duration such as 30 s, 5 min, 1 h or 500 ms)`}},
		{"operator count invalid", dep(func(d map[string]any) {
			set(d, "spec/flinkConfiguration/kubernetes.operator.savepoint.history.max.count", "-1")
		}), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.flinkConfiguration["kubernetes.operator.savepoint.history.max.count"]: invalid value "-1" for kubernetes.operator.savepoint.history.max.count: negative (fix: use a whole number of 0 or more)`}},
		{"operator boolean invalid", dep(func(d map[string]any) {
			set(d, "spec/flinkConfiguration/kubernetes.operator.job.upgrade.last-state-fallback.enabled", "yes")
		}), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.flinkConfiguration["kubernetes.operator.job.upgrade.last-state-fallback.enabled"]: invalid value "yes" for kubernetes.operator.job.upgrade.last-state-fallback.enabled: not a boolean (fix: use true or false)`}},
		{"operator values valid", dep(func(d map[string]any) {
			set(d, "spec/flinkConfiguration/kubernetes.operator.savepoint.history.max.age", "24 h")
			set(d, "spec/flinkConfiguration/kubernetes.operator.savepoint.history.max.count", 5)
			set(d, "spec/flinkConfiguration/kubernetes.operator.periodic.savepoint.interval", "PT1H")
			set(d, "spec/flinkConfiguration/kubernetes.operator.job.upgrade.last-state-fallback.enabled", true)
		}), Options{}, nil},
		{"rollback without HA is fine (rolled back from the upgrade's savepoint)", dep(func(d map[string]any) {
			set(d, "spec/flinkConfiguration/kubernetes.operator.deployment.rollback.enabled", "true")
		}), Options{}, nil},
		{"forbidden key", dep(func(d map[string]any) { set(d, "spec/flinkConfiguration/kubernetes.cluster-id", "x") }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.flinkConfiguration["kubernetes.cluster-id"]: config key kubernetes.cluster-id is set by flink-gitops (set from metadata.name) and must not be given (fix: remove the key)`}},
		{"memory quantity does not parse", dep(func(d map[string]any) { set(d, "spec/taskManager/resources/requests/memory", "2 gigs") }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.taskManager.resources.requests.memory: memory "2 gigs" does not parse as Flink's MemorySize or a Kubernetes quantity (fix: use a size such as 2048m, 2g or 2Gi)`}},
		{"cpu quantity does not parse", dep(func(d map[string]any) { set(d, "spec/jobManager/resources/limits/cpu", "lots") }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.jobManager.resources.limits.cpu: cpu "lots" is not a positive Kubernetes quantity (fix: use a number of cores such as 1, 0.5 or 500m)`}},
		{"legacy memory does not parse", dep(func(d map[string]any) {
			set(d, "spec/jobManager/resource", map[string]any{"memory": "2 gigs", "cpu": 1})
		}), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.jobManager.resource.memory: memory "2 gigs" does not parse (fix: use a size such as 2048m, 2g or 2Gi)`}},
		{"request above limit", dep(func(d map[string]any) { set(d, "spec/jobManager/resources/limits", map[string]any{"memory": "512Mi"}) }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.jobManager.resources.requests.memory: memory request 1Gi is above the limit 512Mi (fix: lower the request or raise the limit)`}},
		{"memory not defined", dep(func(d map[string]any) { set(d, "spec/taskManager", nil) }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.taskManager.resource.memory: TaskManager memory is not defined (fix: set spec.taskManager.resource.memory or spec.taskManager.resources.requests.memory)`}},
		{"bad log configuration file", dep(func(d map[string]any) { set(d, "spec/logConfiguration", map[string]any{"log4j.properties": "x"}) }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.logConfiguration["log4j.properties"]: unknown log configuration file "log4j.properties" (fix: use log4j-console.properties or logback-console.xml)`}},
		{"ingress without template", dep(func(d map[string]any) { set(d, "spec/ingress", map[string]any{"className": "nginx"}) }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.ingress.template: ingress template is missing (fix: set spec.ingress.template, e.g. {{name}}.{{namespace}}.example.com)`}},
		{"unknown field", dep(func(d map[string]any) { set(d, "spec/job/parallelizm", 2) }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.job.parallelizm: unknown field "parallelizm" (fix: remove it or correct its spelling; flink-gitops rejects fields it does not support rather than ignoring them)`}},
		{"wrong type", dep(func(d map[string]any) { set(d, "spec/job/parallelism", "two") }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.job.parallelism: expected an integer, got a string (fix: write spec.job.parallelism as an integer)`}},
		{"wrong apiVersion", dep(func(d map[string]any) { set(d, "apiVersion", "flink.apache.org/v1alpha1") }), Options{},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: apiVersion: unsupported apiVersion "flink.apache.org/v1alpha1" for FlinkDeployment (fix: use apiVersion flink.apache.org/v1beta1)`}},
		{"other kind is an error when configured", []map[string]any{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c"}}}, Options{OtherKinds: OtherKindsError},
			[]string{`app: app/r.yaml: ConfigMap flink/c: ConfigMap (v1) is not a FlinkDeployment or FlinkSessionJob (fix: remove it from the entry point; flink-gitops applies only Flink resources)`}},
		{"session job to a missing cluster", []map[string]any{validSessionJob("job-a", "nope")}, Options{},
			[]string{`app: app/r.yaml: FlinkSessionJob flink/job-a: spec.deploymentName: session cluster FlinkDeployment flink/nope is not declared in the repository (fix: declare the FlinkDeployment (without spec.job) in the same namespace, or fix spec.deploymentName)`}},
		{"session job to an application cluster", []map[string]any{validDeployment("app-cluster"), validSessionJob("job-a", "app-cluster")}, Options{},
			[]string{`app: app/r.yaml: FlinkSessionJob flink/job-a: spec.deploymentName: FlinkDeployment flink/app-cluster is an application cluster; session jobs need a session cluster (fix: point spec.deploymentName at a FlinkDeployment without spec.job)`}},
		{"unsupported field", dep(func(d map[string]any) { set(d, "spec/ingress", map[string]any{"template": "x"}) }), Options{UnsupportedFields: []string{"spec.ingress", "spec.job.autoscalerResetNonce"}},
			[]string{`app: app/r.yaml: FlinkDeployment flink/orders: spec.ingress: field spec.ingress is not supported by flink-gitops yet (fix: remove the field; flink-gitops would not act on it)`}},
		{"session job valid", []map[string]any{validSessionCluster("session"), validSessionJob("job-a", "session")}, Options{}, nil},
		{"session job without jarURI", func() []map[string]any {
			j := validSessionJob("job-a", "session")
			set(j, "spec/job/jarURI", nil)
			return []map[string]any{validSessionCluster("session"), j}
		}(), Options{},
			[]string{`app: app/r.yaml: FlinkSessionJob flink/job-a: spec.job.jarURI: a session job needs a jarURI (fix: set spec.job.jarURI to the job jar)`}},
		{"session job without deploymentName", func() []map[string]any {
			j := validSessionJob("job-a", "")
			return []map[string]any{j}
		}(), Options{},
			[]string{`app: app/r.yaml: FlinkSessionJob flink/job-a: spec.deploymentName: deploymentName is missing (fix: set spec.deploymentName to the session cluster's FlinkDeployment name)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.opts.DefaultNamespace == "" {
				tc.opts.DefaultNamespace = "flink"
			} else if tc.opts.DefaultNamespace == "-" {
				tc.opts.DefaultNamespace = ""
				set(tc.objs[0], "metadata/namespace", "explicit")
			}
			res := renderFiles(t, map[string]string{
				"app/kustomization.yaml": "resources:\n- r.yaml\n",
				file:                     string(yamlDocs(t, tc.objs...)),
			}, tc.opts)
			got := problemLines(res.Problems)
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("problems (-want +got):\n%s", diff)
			}
			if len(want) == 0 && len(res.Resources) != len(tc.objs) {
				t.Fatalf("want %d valid resources, got %d", len(tc.objs), len(res.Resources))
			}
			if len(want) > 0 && len(res.Invalid) == 0 && tc.opts.OtherKinds != OtherKindsError {
				t.Fatalf("an invalid resource must be listed in Invalid")
			}
		})
	}
}

func TestDuplicateAcrossEntryPoints(t *testing.T) {
	d := string(yamlDocs(t, validDeployment("orders")))
	res := renderFiles(t, map[string]string{
		"a/kustomization.yaml": "resources: [r.yaml]\n", "a/r.yaml": d,
		"b/kustomization.yaml": "resources: [r.yaml]\n", "b/r.yaml": d,
		"c/kustomization.yaml": "namespace: other\nresources: [r.yaml]\n", "c/r.yaml": d,
	}, Options{EntryPoints: []string{"*"}, DefaultNamespace: "flink"})
	want := []string{`b: b/r.yaml: FlinkDeployment flink/orders: FlinkDeployment flink/orders is also declared by entry point a (a/r.yaml) (fix: rename one of them (metadata.name or a kustomize namePrefix/nameSuffix), or declare the resource in one entry point only)`}
	if diff := cmp.Diff(want, problemLines(res.Problems)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if len(res.Resources) != 1 || res.Resources[0].Key() != (Key{"FlinkDeployment", "other", "orders"}) {
		t.Fatalf("only other/orders should stay valid, got %+v", res.Resources)
	}
	if len(res.Invalid) != 1 || res.Invalid[0] != (Key{"FlinkDeployment", "flink", "orders"}) {
		t.Fatalf("Invalid = %v", res.Invalid)
	}
}

// TestOneBadResourceDoesNotBlockOthers: a broken entry point and an invalid
// resource leave the other resources valid.
func TestOneBadResourceDoesNotBlockOthers(t *testing.T) {
	bad := validDeployment("bad")
	set(bad, "spec/image", nil)
	res := renderFiles(t, map[string]string{
		"a/kustomization.yaml":      "resources: [r.yaml]\n",
		"a/r.yaml":                  string(yamlDocs(t, validDeployment("good"), bad)),
		"broken/kustomization.yaml": "resources: [missing.yaml]\n",
		"c/kustomization.yaml":      "resources: [r.yaml]\n",
		"c/r.yaml":                  string(yamlDocs(t, validDeployment("also-good"))),
	}, Options{EntryPoints: []string{"a", "broken", "c"}, DefaultNamespace: "flink"})
	var names []string
	for _, r := range res.Resources {
		names = append(names, r.Key().Name)
	}
	if diff := cmp.Diff([]string{"also-good", "good"}, names); diff != "" {
		t.Fatalf("valid resources (-want +got):\n%s", diff)
	}
	if len(res.Problems) != 2 || !res.EntryPoints[1].Failed || res.EntryPoints[0].Failed {
		t.Fatalf("problems %v entry points %+v", problemLines(res.Problems), res.EntryPoints)
	}
}

// TestProblemLabels: a problem in the root entry point is labelled with its
// path, ".", not as a config problem.
func TestProblemLabels(t *testing.T) {
	for _, c := range []struct {
		p    Problem
		want string
	}{
		{Problem{File: "d.yaml", Resource: "FlinkDeployment flink/a", Field: "spec.image", Message: "m", Fix: "f"}, ".: d.yaml: FlinkDeployment flink/a: spec.image: m (fix: f)"},
		{Problem{Message: "kustomize build failed: x"}, ".: kustomize build failed: x"},
		{Problem{Field: "entryPoints", Message: "no entry points are configured"}, "(config): entryPoints: no entry points are configured"},
		{Problem{EntryPoint: "apps/a", File: "apps/a/d.yaml", Message: "m"}, "apps/a: apps/a/d.yaml: m"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.p, got, c.want)
		}
	}
}

// TestSessionJobWithClusterConfig: a session job's effective configuration
// includes its session cluster's (as in the operator), so a stateful job
// whose cluster sets the directories is valid, and one whose cluster does
// not is refused naming both places to fix.
func TestSessionJobWithClusterConfig(t *testing.T) {
	job := validSessionJob("job-a", "session")
	set(job, "spec/job/upgradeMode", "savepoint")
	withDirs := validSessionCluster("session")
	noDirs := validSessionCluster("session")
	set(noDirs, "spec/flinkConfiguration", map[string]any{"taskmanager.numberOfTaskSlots": "2"})
	res := renderFiles(t, map[string]string{"app/kustomization.yaml": "resources:\n- r.yaml\n", "app/r.yaml": string(yamlDocs(t, withDirs, job))},
		Options{DefaultNamespace: "flink"})
	if len(res.Problems) != 0 || len(res.Resources) != 2 {
		t.Fatalf("a session job using its cluster's directories: %v", problemLines(res.Problems))
	}
	res = renderFiles(t, map[string]string{"app/kustomization.yaml": "resources:\n- r.yaml\n", "app/r.yaml": string(yamlDocs(t, noDirs, job))},
		Options{DefaultNamespace: "flink"})
	want := []string{
		`app: app/r.yaml: FlinkSessionJob flink/job-a: spec.flinkConfiguration: upgradeMode savepoint needs a checkpoint directory (fix: set execution.checkpointing.dir (or state.checkpoints.dir) in flinkConfiguration of the session job or of its session cluster session)`,
		`app: app/r.yaml: FlinkSessionJob flink/job-a: spec.flinkConfiguration: upgradeMode savepoint needs a savepoint directory (fix: set execution.checkpointing.savepoint-dir (or state.savepoints.dir) in flinkConfiguration of the session job or of its session cluster session)`,
	}
	if d := cmp.Diff(want, problemLines(res.Problems)); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	// The daemon's defaults count too.
	res = renderFiles(t, map[string]string{"app/kustomization.yaml": "resources:\n- r.yaml\n", "app/r.yaml": string(yamlDocs(t, noDirs, job))},
		Options{DefaultNamespace: "flink", DefaultConfiguration: map[string]string{"state.checkpoints.dir": "s3://c", "state.savepoints.dir": "s3://s"}})
	if len(res.Problems) != 0 {
		t.Fatalf("directories from the daemon's defaults: %v", problemLines(res.Problems))
	}
}

// TestSupportWarnings: keys and fields accepted but not acted on are
// warned about with their name; a key honoured only with one value warns
// for another; refused keys are problems; unknown operator keys warn.
func TestSupportWarnings(t *testing.T) {
	d := validDeployment("orders")
	for k, v := range map[string]any{
		"kubernetes.operator.job.restart.failed":                      "true",
		"job.autoscaler.enabled":                                      "true",
		"kubernetes.operator.job.autoscaler.scale-up.max-factor":      "2",
		"kubernetes.operator.reconcile.interval":                      "30 s",
		"kubernetes.operator.jm-deployment-recovery.enabled":          "false",
		"kubernetes.operator.session.deletion.block-on-session-jobs":  "true",
		"kubernetes.operator.savepoint.history.max.count":             "3",
		"kubernetes.operator.plugins.listeners.audit.class":           "com.example.Audit",
		"kubernetes.operator.no.such.key":                             "1",
		"kubernetes.operator.cluster.health-check.restarts.threshold": "x",
	} {
		set(d, "spec/flinkConfiguration/"+k, v)
	}
	set(d, "spec/job/checkpointTriggerNonce", 3)
	set(d, "spec/jobManager/resources/claims", []any{map[string]any{"name": "gpu"}})
	res := renderFiles(t, map[string]string{"app/kustomization.yaml": "resources:\n- r.yaml\n", "app/r.yaml": string(yamlDocs(t, d))}, Options{DefaultNamespace: "flink"})
	if got := problemLines(res.Problems); len(got) != 1 || !strings.Contains(got[0], `invalid value "x" for kubernetes.operator.cluster.health-check.restarts.threshold`) {
		t.Fatalf("problems %v, want only the bad integer", got)
	}
	warnings := strings.Join(problemLines(res.Warnings), "\n")
	for _, want := range []string{
		`spec.flinkConfiguration["job.autoscaler.enabled"]: job.autoscaler.enabled has no effect in flink-gitops: the job autoscaler is not implemented yet`,
		`kubernetes.operator.job.autoscaler.scale-up.max-factor has no effect`,
		`kubernetes.operator.reconcile.interval has no effect in flink-gitops: operator-wide setting`,
		`kubernetes.operator.jm-deployment-recovery.enabled: "false" has no effect in flink-gitops, which always behaves as true`,
		`kubernetes.operator.plugins.listeners.audit.class has no effect`,
		`unknown config key kubernetes.operator.no.such.key is ignored`,
		`spec.jobManager.resources.claims: resource claims are not applied to the pods`,
	} {
		if !strings.Contains(warnings, want) {
			t.Errorf("warnings lack %q:\n%s", want, warnings)
		}
	}
	for _, quiet := range []string{"block-on-session-jobs", "savepoint.history.max.count", "checkpointTriggerNonce", "job.restart.failed"} {
		if strings.Contains(warnings, quiet) {
			t.Errorf("an honoured key warned: %s\n%s", quiet, warnings)
		}
	}
}

// TestKubectlExportAccepted: read-only fields kubectl and the operator add
// (status, podTemplate.status, metadata bookkeeping) are ignored.
func TestKubectlExportAccepted(t *testing.T) {
	d := validDeployment("orders")
	set(d, "status", map[string]any{"lifecycleState": "STABLE", "jobStatus": map[string]any{"state": "RUNNING", "newerField": 1}})
	set(d, "metadata/resourceVersion", "123")
	set(d, "metadata/uid", "0b0e5c1e-0000-0000-0000-000000000000")
	set(d, "metadata/generation", 4)
	set(d, "metadata/creationTimestamp", "2026-01-01T00:00:00Z")
	set(d, "spec/podTemplate", map[string]any{"metadata": map[string]any{"creationTimestamp": nil}, "spec": map[string]any{"containers": []any{}}, "status": map[string]any{}})
	set(d, "spec/taskManager/podTemplate", map[string]any{"status": map[string]any{"phase": "Pending"}})
	res := renderFiles(t, map[string]string{"app/kustomization.yaml": "resources:\n- r.yaml\n", "app/r.yaml": string(yamlDocs(t, d))}, Options{DefaultNamespace: "flink"})
	if len(res.Problems) != 0 || len(res.Resources) != 1 {
		t.Fatalf("an exported spec: %v", problemLines(res.Problems))
	}
	plain := renderFiles(t, map[string]string{"app/kustomization.yaml": "resources:\n- r.yaml\n", "app/r.yaml": string(yamlDocs(t, validDeployment("orders")))}, Options{DefaultNamespace: "flink"})
	if plain.Resources[0].Hash == res.Resources[0].Hash {
		t.Error("the pod templates differ but the hashes do not") // the exported one has a pod template; only status is dropped
	}
}

// TestFlinkVersionTestedOrWarned: every version the test bed runs (1.18 to
// 2.3) renders quietly; the other versions the operator supports are
// accepted with a warning that names the tested ones.
func TestFlinkVersionTestedOrWarned(t *testing.T) {
	for _, tc := range []struct {
		version string
		warned  bool
	}{
		{"v1_15", true}, {"v1_16", true}, {"v1_17", true},
		{"v1_18", false}, {"v1_19", false}, {"v1_20", false},
		{"v2_0", false}, {"v2_1", false}, {"v2_2", false}, {"v2_3", false},
		{"v2_4", true},
	} {
		t.Run(tc.version, func(t *testing.T) {
			d := validDeployment("orders")
			set(d, "spec/flinkVersion", tc.version)
			res := renderFiles(t, map[string]string{"app/kustomization.yaml": "resources:\n- r.yaml\n", "app/r.yaml": string(yamlDocs(t, d))}, Options{DefaultNamespace: "flink"})
			if got := problemLines(res.Problems); len(got) != 0 {
				t.Fatalf("problems %v, want none", got)
			}
			warnings := strings.Join(problemLines(res.Warnings), "\n")
			want := "spec.flinkVersion: flinkVersion " + tc.version + " is accepted but not tested by flink-gitops (tested: v1_18, v1_19, v1_20, v2_0, v2_1, v2_2, v2_3)"
			if tc.warned != strings.Contains(warnings, want) {
				t.Errorf("warned %v, want %v; warnings:\n%s", !tc.warned, tc.warned, warnings)
			}
			if !tc.warned && strings.Contains(warnings, "spec.flinkVersion") {
				t.Errorf("a tested version warned:\n%s", warnings)
			}
		})
	}
}
