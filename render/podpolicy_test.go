package render

import (
	"strings"
	"testing"
	"time"
)

// TestPodPolicy renders a FlinkDeployment whose pod template has one thing
// the policy forbids and expects exactly one problem on that field; "" means
// the template passes.
func TestPodPolicy(t *testing.T) {
	baseline := PodPolicy{}
	restricted := PodPolicy{Level: PodSecurityRestricted}
	daemonSecrets := PodPolicy{ForbiddenSecrets: []string{"flink-gitops-git"}}
	saList := PodPolicy{AllowedServiceAccounts: []string{"flink", "flink-reader"}}
	c := func(sc map[string]any) map[string]any {
		return map[string]any{"containers": []any{map[string]any{"name": "flink-main-container", "securityContext": sc}}}
	}
	// restrictedOK is a pod spec that meets restricted.
	restrictedOK := func() map[string]any {
		p := c(map[string]any{"allowPrivilegeEscalation": false, "capabilities": map[string]any{"drop": []any{"ALL"}}})
		p["securityContext"] = map[string]any{"runAsNonRoot": true, "runAsUser": 9999, "seccompProfile": map[string]any{"type": "RuntimeDefault"}}
		return p
	}
	with := func(p map[string]any, k string, v any) map[string]any { p[k] = v; return p }
	tests := []struct {
		name   string
		policy PodPolicy
		path   string // where the pod spec goes, under spec/
		pod    map[string]any
		want   string // field of the one problem, "" none
	}{
		{"baseline: plain template", baseline, "podTemplate", c(map[string]any{"runAsUser": 9999}), ""},
		{"baseline: privileged", baseline, "podTemplate", c(map[string]any{"privileged": true}), "spec.podTemplate.spec.containers[0].securityContext.privileged"},
		{"baseline: hostNetwork", baseline, "podTemplate", map[string]any{"hostNetwork": true}, "spec.podTemplate.spec.hostNetwork"},
		{"baseline: hostPID", baseline, "jobManager/podTemplate", map[string]any{"hostPID": true}, "spec.jobManager.podTemplate.spec.hostPID"},
		{"baseline: hostIPC", baseline, "taskManager/podTemplate", map[string]any{"hostIPC": true}, "spec.taskManager.podTemplate.spec.hostIPC"},
		{"baseline: hostPath", baseline, "podTemplate", map[string]any{"volumes": []any{map[string]any{"name": "h", "hostPath": map[string]any{"path": "/"}}}}, "spec.podTemplate.spec.volumes[0].hostPath"},
		{"baseline: hostPort", baseline, "podTemplate", map[string]any{"containers": []any{map[string]any{"name": "side", "ports": []any{map[string]any{"containerPort": 80, "hostPort": 80}}}}}, "spec.podTemplate.spec.containers[0].ports[0].hostPort"},
		{"baseline: SYS_ADMIN", baseline, "podTemplate", c(map[string]any{"capabilities": map[string]any{"add": []any{"SYS_ADMIN"}}}), "spec.podTemplate.spec.containers[0].securityContext.capabilities.add[0]"},
		{"baseline: NET_RAW", baseline, "podTemplate", c(map[string]any{"capabilities": map[string]any{"add": []any{"NET_RAW"}}}), "capabilities.add[0]"},
		{"baseline: CHOWN is allowed", baseline, "podTemplate", c(map[string]any{"capabilities": map[string]any{"add": []any{"CHOWN"}}}), ""},
		{"baseline: init container privileged", baseline, "podTemplate", map[string]any{"initContainers": []any{map[string]any{"name": "i", "securityContext": map[string]any{"privileged": true}}}}, "spec.podTemplate.spec.initContainers[0].securityContext.privileged"},
		{"baseline: unsafe sysctl", baseline, "podTemplate", map[string]any{"securityContext": map[string]any{"sysctls": []any{map[string]any{"name": "kernel.msgmax", "value": "1"}}}}, "spec.podTemplate.spec.securityContext.sysctls[0]"},
		{"baseline: safe sysctl", baseline, "podTemplate", map[string]any{"securityContext": map[string]any{"sysctls": []any{map[string]any{"name": "net.ipv4.tcp_syncookies", "value": "1"}}}}, ""},
		{"baseline: procMount", baseline, "podTemplate", c(map[string]any{"procMount": "Unmasked"}), "securityContext.procMount"},
		{"baseline: seccomp Unconfined (pod)", baseline, "podTemplate", map[string]any{"securityContext": map[string]any{"seccompProfile": map[string]any{"type": "Unconfined"}}}, "spec.podTemplate.spec.securityContext.seccompProfile.type"},
		{"baseline: seccomp Unconfined (container)", baseline, "podTemplate", c(map[string]any{"seccompProfile": map[string]any{"type": "Unconfined"}}), "spec.podTemplate.spec.containers[0].securityContext.seccompProfile.type"},
		{"baseline: SELinux type", baseline, "podTemplate", c(map[string]any{"seLinuxOptions": map[string]any{"type": "spc_t"}}), "securityContext.seLinuxOptions.type"},
		{"baseline: SELinux user", baseline, "podTemplate", map[string]any{"securityContext": map[string]any{"seLinuxOptions": map[string]any{"user": "root"}}}, "spec.podTemplate.spec.securityContext.seLinuxOptions.user"},
		{"baseline: SELinux role", baseline, "podTemplate", c(map[string]any{"seLinuxOptions": map[string]any{"role": "sysadm_r"}}), "securityContext.seLinuxOptions.role"},
		{"baseline: SELinux container_t", baseline, "podTemplate", c(map[string]any{"seLinuxOptions": map[string]any{"type": "container_t"}}), ""},
		{"baseline: AppArmor unconfined field", baseline, "podTemplate", c(map[string]any{"appArmorProfile": map[string]any{"type": "Unconfined"}}), "securityContext.appArmorProfile.type"},
		{"baseline: Windows host process", baseline, "podTemplate", c(map[string]any{"windowsOptions": map[string]any{"hostProcess": true}}), "securityContext.windowsOptions.hostProcess"},
		{"privileged level allows privileged", PodPolicy{Level: PodSecurityPrivileged}, "podTemplate", c(map[string]any{"privileged": true}), ""},

		{"restricted: compliant", restricted, "podTemplate", restrictedOK(), ""},
		{"restricted: main container may escalate", restricted, "podTemplate", with(restrictedOK(), "containers", nil),
			"podTemplate.spec.containers[flink-main-container].securityContext."}, // both components, escalation and capabilities
		{"restricted: runAsNonRoot missing", restricted, "podTemplate", with(restrictedOK(), "securityContext", map[string]any{"seccompProfile": map[string]any{"type": "RuntimeDefault"}}),
			"securityContext.runAsNonRoot"},
		{"restricted: run as root", restricted, "podTemplate", with(restrictedOK(), "securityContext", map[string]any{"runAsNonRoot": true, "runAsUser": 0, "seccompProfile": map[string]any{"type": "RuntimeDefault"}}),
			"spec.podTemplate.spec.securityContext.runAsUser"},
		{"restricted: no seccomp", restricted, "podTemplate", with(restrictedOK(), "securityContext", map[string]any{"runAsNonRoot": true}), "securityContext.seccompProfile"},
		{"restricted: nfs volume", restricted, "podTemplate", with(restrictedOK(), "volumes", []any{map[string]any{"name": "n", "nfs": map[string]any{"server": "x", "path": "/"}}}), "spec.podTemplate.spec.volumes[0]"},
		{"restricted: adds CHOWN", restricted, "podTemplate", with(restrictedOK(), "containers", []any{map[string]any{"name": "flink-main-container",
			"securityContext": map[string]any{"allowPrivilegeEscalation": false, "capabilities": map[string]any{"drop": []any{"ALL"}, "add": []any{"CHOWN"}}}}}), "capabilities.add[0]"},

		{"SA: template repeats the spec's", baseline, "podTemplate", map[string]any{"serviceAccountName": "flink"}, ""},
		{"SA: template names another", baseline, "podTemplate", map[string]any{"serviceAccountName": "flink-gitops"}, "spec.podTemplate.spec.serviceAccountName"},
		{"SA: deprecated field", baseline, "taskManager/podTemplate", map[string]any{"serviceAccount": "admin"}, "spec.taskManager.podTemplate.spec.serviceAccount"},
		{"SA: allow-listed", saList, "podTemplate", map[string]any{"serviceAccountName": "flink-reader"}, ""},
		{"SA: not allow-listed", saList, "podTemplate", map[string]any{"serviceAccountName": "default"}, "spec.podTemplate.spec.serviceAccountName"},

		{"secret: volume", daemonSecrets, "podTemplate", map[string]any{"volumes": []any{map[string]any{"name": "s", "secret": map[string]any{"secretName": "flink-gitops-git"}}}}, "spec.podTemplate.spec.volumes[0].secret.secretName"},
		{"secret: projected", daemonSecrets, "podTemplate", map[string]any{"volumes": []any{map[string]any{"name": "s", "projected": map[string]any{"sources": []any{map[string]any{"secret": map[string]any{"name": "flink-gitops-git"}}}}}}}, "spec.podTemplate.spec.volumes[0].projected.sources[0].secret.name"},
		{"secret: env", daemonSecrets, "jobManager/podTemplate", map[string]any{"containers": []any{map[string]any{"name": "flink-main-container", "env": []any{map[string]any{"name": "T", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "flink-gitops-git", "key": "token"}}}}}}}, "spec.jobManager.podTemplate.spec.containers[0].env[0].valueFrom.secretKeyRef.name"},
		{"secret: envFrom", daemonSecrets, "podTemplate", map[string]any{"containers": []any{map[string]any{"name": "x", "envFrom": []any{map[string]any{"secretRef": map[string]any{"name": "flink-gitops-git"}}}}}}, "spec.podTemplate.spec.containers[0].envFrom[0].secretRef.name"},
		{"secret: another Secret is fine", daemonSecrets, "podTemplate", map[string]any{"volumes": []any{map[string]any{"name": "s", "secret": map[string]any{"secretName": "flink-s3"}}}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := validDeployment("orders")
			set(d, "spec/serviceAccount", "flink")
			if tc.pod["containers"] == nil {
				delete(tc.pod, "containers")
			}
			set(d, "spec/"+tc.path, map[string]any{"spec": tc.pod})
			res := renderFiles(t, map[string]string{"app/kustomization.yaml": "resources: [r.yaml]\n", "app/r.yaml": string(yamlDocs(t, d))},
				Options{DefaultNamespace: "flink", PodPolicy: tc.policy})
			var got []Problem
			for _, p := range res.Problems {
				if strings.Contains(p.Field, "podTemplate") || strings.Contains(p.Field, "serviceAccount") {
					got = append(got, p)
				}
			}
			if tc.want == "" {
				if len(got) != 0 || len(res.Problems) != 0 {
					t.Fatalf("want no problems, got %v", problemLines(res.Problems))
				}
				return
			}
			if len(got) == 0 {
				t.Fatalf("want a problem on %s, got %v", tc.want, problemLines(res.Problems))
			}
			for _, p := range got {
				if !strings.Contains(p.Field, tc.want) || p.Fix == "" || p.File != "app/r.yaml" {
					t.Errorf("problem %s: want only %s, with file and fix", p, tc.want)
				}
			}
		})
	}
}

func TestSpecServiceAccountAllowList(t *testing.T) {
	d := validDeployment("orders")
	set(d, "spec/serviceAccount", "cluster-admin")
	res := renderFiles(t, map[string]string{"app/kustomization.yaml": "resources: [r.yaml]\n", "app/r.yaml": string(yamlDocs(t, d))},
		Options{DefaultNamespace: "flink", PodPolicy: PodPolicy{AllowedServiceAccounts: []string{"flink"}}})
	if len(res.Problems) != 1 || res.Problems[0].Field != "spec.serviceAccount" {
		t.Fatalf("want one problem on spec.serviceAccount, got %v", problemLines(res.Problems))
	}
}

func TestCheckSchedule(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		value string
		floor time.Duration
		want  string // part of the message, "" accepted
	}{
		{"1h", time.Minute, ""},
		{"0", time.Minute, ""}, // off
		{"30s", time.Minute, "shorter than the daemon allows"},
		{"500", time.Minute, "shorter than the daemon allows"}, // milliseconds
		{"PT30S", time.Minute, "shorter than the daemon allows"},
		{"PT5M", time.Minute, ""},
		{"30s", 0, ""}, // no floor
		{"0 0 0 30 2 ?", time.Minute, "never fires"},
		{"0 0 0 31 4 ?", 0, "never fires"},
		{"0 0 * * * ?", time.Minute, ""},
		{"* * * * * ?", time.Minute, "more often than the daemon allows"},
		{"0/10 * * * * ?", time.Minute, "more often than the daemon allows"},
		{"0 0,0/1 * * * ?", 2 * time.Minute, "more often than the daemon allows"},
		{"0 0 12 L * ?", time.Minute, "failed to parse"},
	}
	for _, tc := range tests {
		msg, fix := checkSchedule(tc.value, tc.floor, now)
		switch {
		case tc.want == "" && msg != "":
			t.Errorf("checkSchedule(%q, %s) = %q, want accepted", tc.value, tc.floor, msg)
		case tc.want != "" && (!strings.Contains(msg, tc.want) || fix == ""):
			t.Errorf("checkSchedule(%q, %s) = %q (fix %q), want %q with a fix", tc.value, tc.floor, msg, fix, tc.want)
		}
	}
}

// TestScheduleValidation: the impossible cron of the issue and an interval
// under the floor are refused on the right field.
func TestScheduleValidation(t *testing.T) {
	for value, want := range map[string]string{"0 0 0 30 2 ?": "never fires", "10s": "shorter than the daemon allows"} {
		d := validDeployment("orders")
		set(d, "spec/flinkConfiguration/kubernetes.operator.periodic.savepoint.interval", value)
		res := renderFiles(t, map[string]string{"app/kustomization.yaml": "resources: [r.yaml]\n", "app/r.yaml": string(yamlDocs(t, d))},
			Options{DefaultNamespace: "flink", MinPeriodicInterval: time.Minute})
		if len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Message, want) ||
			res.Problems[0].Field != `spec.flinkConfiguration["kubernetes.operator.periodic.savepoint.interval"]` {
			t.Errorf("%q: got %v, want one problem %q on the key", value, problemLines(res.Problems), want)
		}
	}
}
